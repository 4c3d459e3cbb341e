//! The `biprop` command: everything is in the library's `cli` module, which
//! the Python package's `biprop` command runs too.

fn main() {
    // A file-size limit (`ulimit -f`) then fails the write with EFBIG, which
    // is reported as an error, instead of killing the process silently.
    biprop::fsutil::ignore_file_size_signal();
    std::process::exit(biprop::cli::main_with_args(std::env::args_os()));
}
