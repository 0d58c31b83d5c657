/// glibc's allocator is slow when memory allocated on one thread is freed on another, which
/// is what actors on several threads do with every message; mimalloc is not (measured in the
/// benchmark: see examples/benchmark/results/HISTORY.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    eliot::cli::main()
}
