//! All tracing set-up: human-readable logs in development and tests, JSON
//! lines in production; `RUST_LOG` overrides the level. Every line passes
//! through [`mask_phones`]: "logs never print phone numbers in full", even
//! when a request's query string or a client's bad input is quoted.

use std::borrow::Cow;
use std::io::{self, Write};

use tracing_subscriber::EnvFilter;

use crate::config::Environment;

pub fn init(env: Environment) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(|| Masked(io::stdout()));
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if env == Environment::Production {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A log writer that masks mobile numbers. The formatter hands it one whole
/// event per write, so a number is never split between two writes.
struct Masked<W>(W);

impl<W: Write> Write for Masked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&mask_phones(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Masks every mainland mobile number (`1[3-9]` and nine digits, alone or
/// after `86`/`0086`) as the API does: `13812345678` → `138****5678`.
/// Longer runs of digits (timestamps, ids) are left alone.
pub fn mask_phones(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && text[i].is_ascii_digit() {
            i += 1;
        }
        let run = &text[start..i];
        let prefix = run.len().saturating_sub(11);
        let number = &run[prefix..];
        let is_phone = matches!(&run[..prefix], b"" | b"86" | b"0086")
            && number.len() == 11
            && number[0] == b'1'
            && (b'3'..=b'9').contains(&number[1]);
        if is_phone {
            let at = start + prefix + 3;
            out.get_or_insert_with(|| text.to_vec())[at..at + 4].copy_from_slice(b"****");
        }
    }
    match out {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(s: &str) -> String {
        String::from_utf8(mask_phones(s.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn mobile_numbers_are_masked_and_other_digits_kept() {
        assert_eq!(
            mask("target=/api/v1/tickets?q=13812345678&x=1"),
            "target=/api/v1/tickets?q=138****5678&x=1"
        );
        assert_eq!(
            mask("unknown variant `15987654321`"),
            "unknown variant `159****4321`"
        );
        assert_eq!(
            mask("+8613812345678 008613812345678"),
            "+86138****5678 0086138****5678"
        );
        assert_eq!(mask("电话13812345678。"), "电话138****5678。");
        for kept in [
            "1764000000000",
            "12345678901",
            "1381234567",
            "2026-11-22T07:48:22.581091Z",
            "id=7713812345678",
        ] {
            assert_eq!(mask(kept), kept);
        }
    }
}
