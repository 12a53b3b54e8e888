//! Link settings of this plugin.

fn main() {
    // Start with 4 MiB of linear memory instead of the linker's ~1.1 MiB: a call on an
    // ordinary mail's event then never grows memory, and the host skips the two `mprotect`
    // calls a grow costs per call (one to grow, one to shrink the slot back for the next
    // mail). Pages the plugin does not touch cost nothing (docs/plugins.md, "Performance").
    println!("cargo::rustc-link-arg-cdylib=--initial-memory=4194304");
}
