//! `retina-record`: see the library documentation and README.md.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use retina_record::cli::{Args, Command};
use retina_record::{camera, demo, session, stop};

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse(); // exits with status 2 on bad usage, 0 for --help/--version
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async {
        let stop = stop::listen()?;
        match &args.command {
            None => session::run(&args, stop).await,
            Some(Command::Camera(a)) => camera::serve(a, stop).await,
            Some(Command::Demo(a)) => demo::run(a, stop).await,
        }
    });
    let Err(e) = result else {
        return ExitCode::SUCCESS;
    };
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        eprintln!("error: {e:?}");
    } else {
        eprintln!("error: {}", session::one_line(&format!("{e:#}")));
    }
    if e.downcast_ref::<session::UsageError>().is_some() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}
