//! Mail transport: SMTP when `mail.smtp_url` is set (`smtp://` plain or
//! STARTTLS with `?tls=required`, `smtps://` TLS), else `.eml` files under
//! `<data_dir>/outbox/`.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Messages in flight at once (and SMTP connections kept open).
pub const CONCURRENCY: usize = 32;

#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("bad address or message: {0}")]
    Message(String),
    #[error("delivery failed: {0}")]
    Transport(String),
}

impl Mailer {
    pub fn from_settings(smtp_url: &str, data_dir: &std::path::Path) -> Result<Mailer, MailError> {
        if smtp_url.is_empty() {
            let dir = data_dir.join("outbox");
            std::fs::create_dir_all(&dir)
                .map_err(|e| MailError::Transport(format!("{}: {e}", dir.display())))?;
            Ok(Mailer::Files(AsyncFileTransport::new(&dir), dir))
        } else {
            let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
                .map_err(|e| MailError::Transport(e.to_string()))?
                .timeout(Some(Duration::from_secs(20)))
                .pool_config(
                    lettre::transport::smtp::PoolConfig::new()
                        .max_size(CONCURRENCY as u32)
                        .idle_timeout(Duration::from_secs(30)),
                )
                .build();
            Ok(Mailer::Smtp(t))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp(_) => "smtp".into(),
            Mailer::Files(_, dir) => format!("files:{}", dir.display()),
        }
    }

    /// Sends one message to every address in `to` (comma-separated).
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), MailError> {
        self.send_message(from, to, subject, body, None).await
    }

    /// Sends one message; `message_id` (an outbox row's) lets a receiver
    /// recognise the same notification should it ever arrive twice.
    pub async fn send_message(
        &self,
        from: &str,
        to: &str,
        subject: &str,
        body: &str,
        message_id: Option<String>,
    ) -> Result<(), MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Message(format!("from: {e}")))?;
        let mut builder = Message::builder().from(from);
        for addr in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let mb: Mailbox = addr
                .parse()
                .map_err(|e| MailError::Message(format!("to `{addr}`: {e}")))?;
            builder = builder.to(mb);
        }
        if message_id.is_some() {
            builder = builder.message_id(message_id);
        }
        let msg = builder
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| MailError::Message(e.to_string()))?;
        match self {
            Mailer::Smtp(t) => t
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transport(e.to_string())),
            Mailer::Files(t, _) => t
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transport(e.to_string())),
        }
    }
}
