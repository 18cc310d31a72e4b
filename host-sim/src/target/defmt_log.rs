//! Decoding the firmware's defmt log (the frames QEMU writes to stdout through semihosting)
//! with the `defmt-decoder` crate and the defmt table in the firmware's ELF.

use std::fmt;

use anyhow::{bail, Context, Result};
use defmt_decoder::{DecodeError, Locations, StreamDecoder, Table};

/// The defmt table (format strings, levels) and source locations of one firmware ELF.
pub struct DefmtTable {
    table: Table,
    locations: Locations,
}

/// One decoded log line.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// `info`, `error`, …; `None` for `defmt::println!` frames and decoder notes.
    pub level: Option<&'static str>,
    /// The formatted message.
    pub message: String,
    /// `file:line` of the log statement, kept for warnings and errors.
    pub location: Option<String>,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<5} {}", self.level.unwrap_or(""), self.message)?;
        if let Some(location) = &self.location {
            write!(f, "  ({location})")?;
        }
        Ok(())
    }
}

impl DefmtTable {
    /// Reads the defmt table from the bytes of an ELF file.
    pub fn from_elf(elf: &[u8]) -> Result<Self> {
        let table = Table::parse(elf)
            .context("reading the defmt table")?
            .context("the ELF has no defmt table (is it linked with -Tdefmt.x and using defmt?)")?;
        // Locations need debug info; without them lines are still decoded.
        let locations = table.get_locations(elf).unwrap_or_default();
        Ok(Self { table, locations })
    }

    /// A decoder for one stream of frames.
    pub fn stream(&self) -> LogStream<'_> {
        LogStream {
            table: self,
            decoder: self.table.new_stream_decoder(),
            received: 0,
        }
    }
}

/// Decodes a byte stream, chunk by chunk, into log lines.
pub struct LogStream<'t> {
    table: &'t DefmtTable,
    decoder: Box<dyn StreamDecoder + Send + Sync + 't>,
    received: usize,
}

impl LogStream<'_> {
    /// Feeds `bytes` and returns every line completed by them. A malformed frame becomes a
    /// note line when the encoding can resynchronise (rzcobs), an error otherwise (raw).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<LogLine>> {
        self.received += bytes.len();
        self.decoder.received(bytes);
        let mut lines = Vec::new();
        loop {
            match self.decoder.decode() {
                Ok(frame) => {
                    let level = frame.level().map(|level| level.as_str());
                    let location = match level {
                        Some("warn" | "error") => {
                            self.table.locations.get(&frame.index()).map(|at| {
                                let file = at.file.strip_prefix(super::repo_root());
                                let file = file.unwrap_or(&at.file);
                                format!("{}:{}", file.display(), at.line)
                            })
                        }
                        _ => None,
                    };
                    lines.push(LogLine {
                        level,
                        message: frame.display_message().to_string(),
                        location,
                    });
                }
                Err(DecodeError::UnexpectedEof) => break,
                Err(DecodeError::Malformed) if self.table.table.encoding().can_recover() => {
                    lines.push(LogLine {
                        level: None,
                        message: "[xtask: malformed defmt frame skipped]".into(),
                        location: None,
                    });
                }
                Err(DecodeError::Malformed) => bail!(
                    "malformed defmt frame after {} bytes (raw encoding cannot resynchronise; \
                     did something other than defmt write to semihosting stdout?)",
                    self.received
                ),
            }
        }
        Ok(lines)
    }
}
