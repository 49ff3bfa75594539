//! The `portcullis` binary: parses the command line and reports failures as one line on stderr.

use std::process::ExitCode;

use portcullis::cli;

fn main() -> ExitCode {
    let cli = cli::parse();
    portcullis::telemetry::init(cli.log_format);
    let result = actix_web::rt::System::new().block_on(cli::run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portcullis: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
