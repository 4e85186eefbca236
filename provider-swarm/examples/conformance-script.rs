//! Prints faas-testkit's conformance function (a POSIX sh script) on
//! stdout: `scripts/build-images.sh` bakes it into the test function image
//! as `/conformance.sh`, so the image always matches the kit.

fn main() {
    print!("{}", faas_testkit::function::SHELL_SCRIPT);
}
