//! Gives liboc2mqtt.so a versioned soname, so programs linked against it
//! keep loading the ABI they were built for after an upgrade.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the package version");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,liboc2mqtt.so.{major}");
    }
}
