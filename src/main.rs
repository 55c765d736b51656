//! `retina-record`: parses the command line, sets up logging and the runtime, dispatches to a
//! command, and turns its result into the exit status. See ARCHITECTURE.md and README.md.

mod cli;
mod cmd;
mod logging;
mod metrics;
mod status;
mod systemd;

use std::io::Write as _;
use std::process::ExitCode;

use cli::{Args, Command};
use retina_record::error::{Error, Result};
use retina_record::stop;

fn main() -> ExitCode {
    let args = cli::parse(); // exits with status 2 on bad usage, 0 for --help/--version
    logging::init(args.command.is_none() && args.quiet);
    // One line, like every other message (the default hook prints several).
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        tracing::error!("panic at {at}: {what}");
    }));
    // One camera's work fits one thread, the cheapest runtime; a site's cameras share one
    // runtime with a worker per CPU (README, "Performance": on one thread, 600 cameras fell
    // 0.67 s behind, on two 0.23 s; 800, 17.6 s against 3.8 s).
    let mut builder = if args.command.is_none() && (args.config.is_some() || args.url.len() > 1) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!, which panics when stderr's reader has gone.
            let mut stderr = std::io::stderr();
            let _ = if std::env::var_os("RUST_BACKTRACE").is_some() {
                writeln!(stderr, "{}error: {e:?}", logging::error_prefix())
            } else {
                writeln!(stderr, "{}error: {e}", logging::error_prefix())
            };
            ExitCode::from(e.exit_code())
        }
    }
}

async fn dispatch(args: &Args) -> Result<()> {
    let stop = stop::listen().map_err(Error::failure)?;
    match &args.command {
        None => cmd::record::run(args, stop).await,
        Some(Command::Camera(a)) => cmd::camera::run(a, stop).await,
        Some(Command::Demo(a)) => cmd::demo::run(a, stop).await,
        Some(Command::Timing(a)) => cmd::timing::run(a),
        Some(Command::Probe(a)) => cmd::probe::run(a).await,
        Some(Command::Completions { shell }) => cmd::docs::completions(*shell),
        Some(Command::Man) => cmd::docs::man(),
    }
}
