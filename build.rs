//! Rebuild when the policy pack changes: it is embedded in the binary (`include_dir!`), and
//! cargo does not otherwise know that the crate depends on those files.

fn main() {
    println!("cargo:rerun-if-changed=policies");
}
