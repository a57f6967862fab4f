//! `pods/log`: a container attempt's log file as a byte stream, optionally following it until the
//! attempt ends.

use std::io::SeekFrom;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::state::{ContainerRecord, Phase};

/// Whether attempt `attempt` of container `idx` has ended (so its log will not grow any more).
pub fn attempt_over(records: &Mutex<Vec<ContainerRecord>>, idx: usize, attempt: i32) -> bool {
    let Ok(r) = records.lock() else { return true };
    match r.get(idx) {
        None => true,
        Some(c) => c.restart_count > attempt || matches!(c.phase, Phase::Terminated(_)),
    }
}

/// Byte offset where the last `n` lines of `data` begin.
pub fn tail_offset(data: &[u8], n: i64) -> usize {
    if n <= 0 {
        return data.len();
    }
    let mut seen = 0;
    // A trailing newline ends the last line; it does not start a new one.
    let end = if data.last() == Some(&b'\n') {
        data.len() - 1
    } else {
        data.len()
    };
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

struct Follow {
    file: tokio::fs::File,
    records: Arc<Mutex<Vec<ContainerRecord>>>,
    idx: usize,
    attempt: i32,
    follow: bool,
    over: bool,
    done: bool,
}

/// Opens the log of attempt `attempt` and streams it.
pub async fn stream(
    path: &Path,
    records: Arc<Mutex<Vec<ContainerRecord>>>,
    idx: usize,
    attempt: i32,
    follow: bool,
    tail_lines: Option<i64>,
) -> std::io::Result<BoxStream<'static, std::io::Result<Bytes>>> {
    let mut file = tokio::fs::File::open(path).await?;
    if let Some(n) = tail_lines {
        let mut all = Vec::new();
        file.read_to_end(&mut all).await?;
        let off = tail_offset(&all, n);
        file.seek(SeekFrom::Start(off as u64)).await?;
    }
    let st = Follow {
        file,
        records,
        idx,
        attempt,
        follow,
        over: false,
        done: false,
    };
    let s = futures::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match st.file.read(&mut buf).await {
                Ok(0) => {
                    if !st.follow || st.over {
                        return None;
                    }
                    // Once the attempt is over nothing writes any more: read to the end once more.
                    if attempt_over(&st.records, st.idx, st.attempt) {
                        st.over = true;
                        continue;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Some((Ok(Bytes::from(buf)), st));
                }
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            }
        }
    });
    Ok(Box::pin(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_offset_counts_lines_from_the_end() {
        assert_eq!(tail_offset(b"a\nb\nc\n", 2), 2);
        assert_eq!(tail_offset(b"a\nb\nc", 1), 4);
        assert_eq!(tail_offset(b"a\nb\n", 5), 0);
        assert_eq!(tail_offset(b"a\nb\n", 0), 4);
    }
}
