//! The `biprop` command: everything is in the library's `cli` module, which
//! the Python package's `biprop` command runs too.

fn main() {
    std::process::exit(biprop::cli::main_with_args(std::env::args_os()));
}
