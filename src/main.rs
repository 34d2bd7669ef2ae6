use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = convrec::cli::Cli::parse();
    match actix_web::rt::System::new().block_on(convrec::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
