//! `retina-record`: parses the command line, sets up logging and the runtime, dispatches to a
//! command, and turns its result into the exit status. See ARCHITECTURE.md and README.md.

mod cli;
mod cmd;
mod logging;
mod metrics;
mod status;
mod systemd;
mod watched;

use std::io::Write as _;
use std::process::ExitCode;

use cli::{Args, Command};
use retina_record::error::{Error, Result};
use retina_record::rtsp::retina_messages::{camera_in_scope, plain};
use retina_record::stop;

fn main() -> ExitCode {
    let args = cli::parse(); // exits with status 2 on bad usage, 0 for --help/--version
    logging::init(args.command.is_none() && args.quiet);
    // One line, like every other message (the default hook prints several).
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map_or(String::new(), |l| {
            let file = std::path::Path::new(l.file())
                .file_name()
                .unwrap_or_default();
            format!(" at {}:{}", file.to_string_lossy(), l.line())
        });
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        let camera = camera_in_scope().map_or(String::new(), |c| format!("camera {c}: "));
        tracing::error!("{camera}panic{at}: {}", plain(what));
    }));
    match run(&args) {
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

/// Cameras from which a site shares a multi-threaded runtime (a worker per CPU): below, its idle
/// workers cost more CPU than they give; above, one thread falls behind the frames. Measured by
/// bench/many-cameras.sh (bench/README.md, "Many cameras").
const MULTI_THREAD_FROM: usize = 100;

fn run(args: &Args) -> Result<()> {
    // The cameras are read before the runtime exists: how many there are chooses it.
    let cameras = match args.command {
        None => cli::site::cameras(args)?,
        Some(_) => Vec::new(),
    };
    let mut builder = if cameras.len() >= MULTI_THREAD_FROM {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| Error::failure(anyhow::anyhow!("cannot start the async runtime: {e}")))?;
    runtime.block_on(dispatch(args, cameras))
}

async fn dispatch(args: &Args, cameras: Vec<cli::site::CameraFlags>) -> Result<()> {
    let stop = stop::listen().map_err(Error::failure)?;
    match &args.command {
        None => cmd::record::run(args, cameras, stop).await,
        Some(Command::Camera(a)) => cmd::camera::run(a, stop).await,
        Some(Command::Demo(a)) => cmd::demo::run(a, stop).await,
        Some(Command::Timing(a)) => cmd::timing::run(a),
        Some(Command::Export(a)) => cmd::export::run(a),
        Some(Command::List(a)) => cmd::list::run(a),
        Some(Command::Repair(a)) => cmd::repair::run(a),
        Some(Command::Probe(a)) => cmd::probe::run(a).await,
        Some(Command::Completions { shell }) => cmd::docs::completions(*shell),
        Some(Command::Man) => cmd::docs::man(),
    }
}
