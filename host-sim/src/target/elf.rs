//! Reading a firmware ELF: section sizes (flash, static RAM) and symbol names (soft-float
//! checks), with the `object` crate.

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};

/// Section sizes of a Cortex-M firmware linked with `cortex-m-rt`'s `link.x`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    /// `.vector_table` + `.text` (code in flash).
    pub text: u64,
    /// `.rodata` (constants in flash: weights, tables, defmt strings are not loaded).
    pub rodata: u64,
    /// `.data` (in RAM, with its initial image in flash).
    pub data: u64,
    /// `.bss` (zeroed RAM).
    pub bss: u64,
    /// `.uninit` (RAM left uninitialised).
    pub uninit: u64,
}

impl Sizes {
    /// Flash occupied: code, constants and the initial image of `.data`.
    pub fn flash(&self) -> u64 {
        self.text + self.rodata + self.data
    }

    /// Static RAM: `.data + .bss + .uninit`.
    pub fn static_ram(&self) -> u64 {
        self.data + self.bss + self.uninit
    }
}

/// Reads the section sizes of `elf`.
pub fn sizes(elf: &[u8]) -> Result<Sizes> {
    let file = object::File::parse(elf).context("parsing the firmware ELF")?;
    let mut sizes = Sizes::default();
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        let size = section.size();
        match name {
            ".vector_table" | ".text" => sizes.text += size,
            ".rodata" => sizes.rodata += size,
            ".data" => sizes.data += size,
            ".bss" => sizes.bss += size,
            ".uninit" => sizes.uninit += size,
            _ => {}
        }
    }
    Ok(sizes)
}

/// Names of every symbol (defined or not) in `elf`'s symbol table.
pub fn symbol_names(elf: &[u8]) -> Result<Vec<String>> {
    let file = object::File::parse(elf).context("parsing the firmware ELF")?;
    Ok(file
        .symbols()
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .collect())
}

/// Whether `name` is a compiler-builtins floating-point routine (ARM EABI `__aeabi_f*`/`__aeabi_d*`,
/// or the generic `__addsf3`-style names).
pub fn is_soft_float(name: &str) -> bool {
    if name.starts_with("__aeabi_f") || name.starts_with("__aeabi_d") {
        return true;
    }
    const GENERIC: &[&str] = &[
        "__addsf3",
        "__subsf3",
        "__mulsf3",
        "__divsf3",
        "__adddf3",
        "__subdf3",
        "__muldf3",
        "__divdf3",
        "__floatsisf",
        "__floatunsisf",
        "__floatsidf",
        "__fixsfsi",
        "__fixunssfsi",
        "__fixdfsi",
        "__extendsfdf2",
        "__truncdfsf2",
        "__eqsf2",
        "__nesf2",
        "__ltsf2",
        "__lesf2",
        "__gtsf2",
        "__gesf2",
        "__unordsf2",
        "__eqdf2",
        "__ltdf2",
        "__gtdf2",
        "__unorddf2",
    ];
    GENERIC.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_float_names() {
        assert!(is_soft_float("__aeabi_fmul"));
        assert!(is_soft_float("__aeabi_dadd"));
        assert!(is_soft_float("__addsf3"));
        assert!(!is_soft_float("__aeabi_uidivmod"));
        assert!(!is_soft_float("__aeabi_lmul"));
    }
}
