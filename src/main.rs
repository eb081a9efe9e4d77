// Plans of thousands of resources allocate and free millions of small JSON values; mimalloc
// roughly halves the time glibc's allocator spends on that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    weir::cli::main()
}
