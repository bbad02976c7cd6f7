//! Writing to standard output: buffered, and a closed pipe (`| head`) is not an error.

use std::io::{BufWriter, Write};

use anyhow::Result;
use serde::Serialize;

/// Standard output, buffered.
pub fn stdout() -> BufWriter<std::io::StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// Whether an error is the reader of our output going away.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Finish writing: flush, treating a closed pipe as success.
pub fn finish(result: Result<()>, mut out: impl Write) -> Result<()> {
    let result = result.and_then(|()| Ok(out.flush()?));
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Print text.
pub fn print(text: &str) -> Result<()> {
    let mut out = stdout();
    let r = out.write_all(text.as_bytes()).map_err(Into::into);
    finish(r, out)
}

/// Print one JSON object per line.
pub fn json_lines<T: Serialize>(items: impl IntoIterator<Item = T>) -> Result<()> {
    let mut out = stdout();
    let r = (|| -> Result<()> {
        for item in items {
            serde_json::to_writer(&mut out, &item)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })();
    finish(r, out)
}

/// Print one value as pretty JSON.
pub fn json_pretty<T: Serialize>(value: &T) -> Result<()> {
    print(&(serde_json::to_string_pretty(value)? + "\n"))
}
