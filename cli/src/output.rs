//! Printing: Docker-style tables, one-JSON-object-per-line lists, and error text.

use std::fmt::Write;

/// A table with left-aligned columns, three spaces apart, as `docker` prints them.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 3;
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// The message a user should see: a gRPC status's own text, else the error chain.
pub fn error_text(error: &anyhow::Error) -> String {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        return status_text(status);
    }
    format!("{error:#}")
}

pub fn status_text(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unavailable if status.message().contains("transport") => {
            format!("the node is unreachable ({})", status.message())
        }
        tonic::Code::DeadlineExceeded => {
            "the request timed out: the cluster may have lost quorum (make sure more than half of the managers run and reach each other)".into()
        }
        _ => status.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let out = table(&["ID", "NAME"], &[vec!["abc".into(), "web".into()]]);
        assert_eq!(out, "ID    NAME\nabc   web\n");
    }
}
