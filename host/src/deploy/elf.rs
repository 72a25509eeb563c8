//! Flash and static RAM of a linked board binary, read from its ELF sections.
//!
//! Flash: code, read-only data and the initial values of `.data` (`Text`, `ReadOnlyData`,
//! `ReadOnlyString`, `Data` sections). RAM: `.data` and `.bss`/`.uninit`
//! (`UninitializedData`), which hold the arena and the buffers; the stack comes on top.

use std::path::Path;

use anyhow::Context;
use object::{Object, ObjectSection, SectionKind};
use serde::Serialize;

/// Sizes of a linked binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ElfSizes {
    /// Bytes in flash.
    pub flash_bytes: u64,
    /// Bytes of static RAM.
    pub ram_bytes: u64,
}

/// Reads the sizes of the ELF at `path`.
pub fn sizes(path: &Path) -> anyhow::Result<ElfSizes> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = object::File::parse(&*bytes)
        .with_context(|| format!("{}: not an ELF file", path.display()))?;
    let mut sizes = ElfSizes {
        flash_bytes: 0,
        ram_bytes: 0,
    };
    for section in file.sections() {
        match section.kind() {
            SectionKind::Text | SectionKind::ReadOnlyData | SectionKind::ReadOnlyString => {
                sizes.flash_bytes += section.size()
            }
            SectionKind::Data => {
                sizes.flash_bytes += section.size();
                sizes.ram_bytes += section.size();
            }
            SectionKind::UninitializedData => sizes.ram_bytes += section.size(),
            _ => {}
        }
    }
    Ok(sizes)
}
