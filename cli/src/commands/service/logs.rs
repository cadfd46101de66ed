//! `service logs`: every task's output, merged by the manager, `<source>    | <line>`.

use std::io::Write;

use anyhow::bail;
use swarmr_proto::{LogLine, ServiceLogsRequest};

use crate::client;

pub async fn logs(host: &str, follow: bool, tail: &str, service: String) -> anyhow::Result<()> {
    let tail = match parse_tail(tail)? {
        // The request cannot say "no old lines": 0 means all.
        Some(0) if follow => bail!("--tail 0 with --follow is not supported: use --tail 1"),
        Some(0) => return Ok(()),
        Some(n) => n,
        None => 0,
    };
    let mut control = client::control(host).await?;
    let request = ServiceLogsRequest {
        service,
        follow,
        tail,
    };
    let mut stream = control.service_logs(request).await?.into_inner();
    while let Some(line) = stream.message().await? {
        let text = format_line(&line);
        let written = match line.stderr {
            true => std::io::stderr().lock().write_all(text.as_bytes()),
            false => std::io::stdout().lock().write_all(text.as_bytes()),
        };
        if written.is_err() {
            // The reader went away (`| head`): stop quietly, like Docker.
            return Ok(());
        }
    }
    Ok(())
}

/// `all` is `None`; otherwise a line count.
fn parse_tail(tail: &str) -> anyhow::Result<Option<u64>> {
    if tail == "all" {
        return Ok(None);
    }
    match tail.parse::<u64>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => bail!("invalid --tail {tail:?}: use a number of lines or `all`"),
    }
}

fn format_line(line: &LogLine) -> String {
    let text = line.line.strip_suffix('\n').unwrap_or(&line.line);
    let text = text.strip_suffix('\r').unwrap_or(text);
    format!("{}    | {text}\n", line.source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_all_or_a_count() {
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("10").unwrap(), Some(10));
        assert!(parse_tail("-1").is_err());
        assert!(parse_tail("ten").is_err());
    }

    #[test]
    fn lines_carry_their_source() {
        let line = LogLine {
            source: "web.1.abc@node1".into(),
            line: "hello\r\n".into(),
            stderr: false,
        };
        assert_eq!(format_line(&line), "web.1.abc@node1    | hello\n");
    }
}
