//! `audit tail`: print the records of the audit directory, then follow new ones as they are
//! written (by this or any other proxy process).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Print the last `lines` records, then (when `follow`) new ones until interrupted.
pub fn tail(dir: &Path, lines: usize, follow: bool, out: &mut dyn Write) -> io::Result<()> {
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    let files = list(dir)?;
    // The backlog: the last `lines` lines of the newest file.
    if let Some(newest) = files.last() {
        let text = fs::read_to_string(newest)?;
        let all: Vec<&str> = text.lines().collect();
        for l in &all[all.len().saturating_sub(lines)..] {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
    }
    for f in &files {
        offsets.insert(f.clone(), fs::metadata(f)?.len());
    }
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        for f in list(dir)? {
            let start = *offsets.get(&f).unwrap_or(&0);
            let mut file = File::open(&f)?;
            let len = file.metadata()?.len();
            if len <= start {
                continue;
            }
            file.seek(SeekFrom::Start(start))?;
            let mut buf = Vec::new();
            file.take(len - start).read_to_end(&mut buf)?;
            // Only whole lines; a partial one is printed once it is complete.
            let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            out.write_all(&buf[..end])?;
            out.flush()?;
            offsets.insert(f, start + end as u64);
        }
    }
}

fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    // Names start with a UTC timestamp, so name order is age order.
    files.sort();
    Ok(files)
}
