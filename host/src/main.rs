use std::process::ExitCode;

fn main() -> ExitCode {
    provisioner::cli::main()
}
