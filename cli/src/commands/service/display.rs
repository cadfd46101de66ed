//! The progress of `service create` and `service scale` on stderr: redrawn in place on a
//! terminal, only the changed lines otherwise (logs, CI).

use std::io::{IsTerminal, Write};

/// Progress on stderr: redrawn in place on a terminal, changed lines only otherwise.
pub struct Display {
    quiet: bool,
    pub live: bool,
    shown: Vec<String>,
}

impl Display {
    pub fn new(quiet: bool) -> Self {
        let live = std::io::stderr().is_terminal();
        Display {
            quiet,
            live,
            shown: Vec::new(),
        }
    }

    pub fn show(&mut self, lines: &[String]) {
        if self.quiet || lines == self.shown.as_slice() {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.live {
            if !self.shown.is_empty() {
                let _ = write!(err, "\x1b[{}A\x1b[J", self.shown.len());
            }
            lines.iter().for_each(|l| drop(writeln!(err, "{l}")));
        } else {
            for (i, line) in lines.iter().enumerate() {
                if self.shown.get(i) != Some(line) {
                    let _ = writeln!(err, "{line}");
                }
            }
        }
        self.shown = lines.to_vec();
    }

    pub fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}
