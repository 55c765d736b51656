//! The integration tests, built as one test binary (one link, one process to list; as ripgrep
//! does it): `cargo nextest run` names each as `module::test`, e.g.
//! `record::tcp_10s_every_frame_with_timing`.

/// One test per row, `name: (args),`: an async test `name` (on tokio's multi-threaded runtime,
/// two workers, as every test here) running `case(args).await`.
macro_rules! cases {
    ($case:path { $($name:ident: ($($arg:expr),* $(,)?),)* }) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $case($($arg),*).await;
            }
        )*
    };
}

mod support;

mod browser;
mod camera;
mod codecs;
mod connecting;
mod deploy;
mod disk;
mod docs;
mod errors;
mod export;
mod hostile;

mod interop;
mod lab;
mod operations;
mod output;
mod quirks;
mod record;
mod repair;
mod replay;
mod rtsps;
mod servers;
mod site;
mod structure;
mod timing;
mod unattended;
mod vlc;
