//! Prints the palette generated at build time from `schema/*.txt`.

include!(concat!(env!("OUT_DIR"), "/generated.rs"));

fn main() {
    for (name, rgb) in COLORS {
        println!("color {name} #{rgb:06x}");
    }
    for (name, px) in SIZES {
        println!("size {name} {px}px");
    }
}
