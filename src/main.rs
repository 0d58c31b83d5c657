fn main() -> std::process::ExitCode {
    eliot::cli::main()
}
