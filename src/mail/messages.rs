//! The texts wharf mails. The plain text is the message; the HTML part
//! (`html.rs`) is made from it, with the call to action as a button.

use super::Mail;
use crate::store::{format_ms, Link, LinkFile};
use crate::units::human_size;

fn expiry(link: &Link) -> String {
    link.expires_at
        .map(|t| format!("The link works until {}.", format_ms(t)))
        .unwrap_or_else(|| "The link does not expire.".into())
}

/// "Hello Ann," or "Hello," when the recipient's name is not known.
fn greeting(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("Hello {n},\n\n"),
        None => "Hello,\n\n".into(),
    }
}

/// To one recipient (`to`, named `name` if staff gave a name): the link, what
/// it holds, who sent it. `sender` is the sender's display name.
pub fn link(
    product: &str,
    link: &Link,
    files: &[LinkFile],
    url: &str,
    sender: &str,
    to: &str,
    name: Option<&str>,
) -> Mail {
    if link.inbound.is_some() {
        return request(product, link, url, sender, to, name);
    }
    let subject = if link.title.is_empty() {
        format!("{sender} has shared files with you")
    } else {
        format!("{sender} has shared files with you: {}", link.title)
    };
    let mut body = greeting(name);
    body.push_str(&format!(
        "{sender} has shared files with you through {product}.\n\n"
    ));
    if !link.message.is_empty() {
        body.push_str(&format!("Message:\n{}\n\n", link.message));
    }
    for f in files {
        if f.is_dir {
            body.push_str(&format!("  - {}/ (folder)\n", f.name));
        } else {
            body.push_str(&format!("  - {} ({})\n", f.name, human_size(f.size)));
        }
    }
    body.push_str(&format!("\nOpen: {url}\n\n{}\n", expiry(link)));
    if link.password_hash.is_some() {
        body.push_str("The sender will give you the password separately.\n");
    }
    if link.max_uses == Some(1) {
        body.push_str("It can be downloaded once.\n");
    } else if let Some(n) = link.max_uses {
        body.push_str(&format!("It can be downloaded {n} times.\n"));
    }
    Mail {
        kind: "link",
        to: vec![to.to_string()],
        reply_to: None,
        subject,
        body,
        button: Some(("Open the files".into(), url.to_string())),
    }
}

/// To one recipient of an upload request: where to upload, and the limits.
fn request(
    product: &str,
    link: &Link,
    url: &str,
    sender: &str,
    to: &str,
    name: Option<&str>,
) -> Mail {
    let subject = if link.title.is_empty() {
        format!("{sender} asks you to upload files")
    } else {
        format!("{sender} asks you to upload files: {}", link.title)
    };
    let mut body = greeting(name);
    body.push_str(&format!(
        "{sender} asks you to upload files through {product}.\n\n"
    ));
    if !link.message.is_empty() {
        body.push_str(&format!("Message:\n{}\n\n", link.message));
    }
    body.push_str(&format!("Upload here: {url}\n\n{}\n", expiry(link)));
    if let Some(n) = link.max_uses {
        body.push_str(&format!("It accepts up to {n} file(s).\n"));
    }
    if let Some(max) = link.inbound.as_ref().and_then(|i| i.max_size) {
        body.push_str(&format!("Each file may be up to {}.\n", human_size(max)));
    }
    if link.password_hash.is_some() {
        body.push_str("The sender will give you the password separately.\n");
    }
    Mail {
        kind: "request",
        to: vec![to.to_string()],
        reply_to: None,
        subject,
        body,
        button: Some(("Upload files".into(), url.to_string())),
    }
}

/// What staff call a link in their mails: "title (id)", or the id.
fn link_name(link: &Link) -> String {
    if link.title.is_empty() {
        link.public_id.clone()
    } else {
        format!("{} ({})", link.title, link.public_id)
    }
}

fn uses(link: &Link) -> String {
    format!(
        "{}{}",
        link.uses,
        link.max_uses
            .map(|m| format!(" of {m}"))
            .unwrap_or_default()
    )
}

/// To the creator of an upload request: a file arrived. `page` is the link's
/// staff page.
pub fn uploaded(to: &str, link: &Link, file: &LinkFile, who: &str, page: &str) -> Mail {
    Mail {
        kind: "uploaded",
        to: vec![to.to_string()],
        reply_to: None,
        subject: format!("Uploaded: {}", file.name),
        body: format!(
            "{} ({}) was uploaded through your link {} by {who}.\n\
             Saved as {}\nSHA-256: {}\nFiles so far: {}.\n\nSee the link: {page}\n",
            file.name,
            human_size(file.size),
            link_name(link),
            file.path,
            file.sha256.as_deref().unwrap_or("-"),
            uses(link),
        ),
        button: Some(("See the link".into(), page.to_string())),
    }
}

/// The 6-digit code that unlocks a link for one address.
pub fn code(product: &str, to: &str, code: &str, minutes: u64) -> Mail {
    Mail {
        kind: "code",
        to: vec![to.to_string()],
        reply_to: None,
        subject: format!("Your {product} code"),
        body: format!(
            "Your code to open the shared files is:\n\n    {code}\n\nIt is valid for {minutes} minutes. \
             If you did not ask for it, ignore this message.\n"
        ),
        button: None,
    }
}

/// To the link's creator: one of their files was downloaded.
pub fn downloaded(to: &str, link: &Link, file: &str, bytes: u64, who: &str, page: &str) -> Mail {
    Mail {
        kind: "downloaded",
        to: vec![to.to_string()],
        reply_to: None,
        subject: format!("Downloaded: {file}"),
        body: format!(
            "{file} ({}) was downloaded from your link {} by {who}.\n\
             Uses so far: {}.\n\nSee the link: {page}\n",
            human_size(bytes),
            link_name(link),
            uses(link),
        ),
        button: Some(("See the link".into(), page.to_string())),
    }
}

/// To the link's creator: the link expired, or its last use was taken.
pub fn ended(to: &str, link: &Link, expired: bool, page: &str) -> Mail {
    let (kind, subject, why) = if expired {
        ("link_expired", "Link expired", "has expired")
    } else {
        (
            "link_exhausted",
            "Link used up",
            "has been used as often as it allows",
        )
    };
    Mail {
        kind,
        to: vec![to.to_string()],
        reply_to: None,
        subject: format!("{subject}: {}", link_name(link)),
        body: format!(
            "Your link {} {why}; visitors can no longer use it.\n\n\
             Extend it or make a new one: {page}\n",
            link_name(link)
        ),
        button: Some(("See the link".into(), page.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LinkKind, LinkState};

    #[test]
    fn the_link_mail_names_files_expiry_and_rules() {
        let l = Link {
            id: 1,
            public_id: "abc".into(),
            kind: LinkKind::Send,
            owner: "alice".into(),
            title: "Q3".into(),
            message: "see attached".into(),
            recipients: vec!["bob@example.com".into()],
            expires_at: Some(0),
            max_uses: Some(1),
            uses: 0,
            password_hash: Some("x".into()),
            allowed_emails: vec![],
            token_hash: String::new(),
            generation: Some(1),
            client_id: None,
            reference: None,
            state: LinkState::Active,
            created_at: 0,
            ended_at: None,
            last_used_at: None,
            name: String::new(),
            inbound: None,
        };
        let f = LinkFile {
            id: 1,
            name: "r.pdf".into(),
            path: "/x".into(),
            is_dir: false,
            size: 2_000_000,
            sha256: None,
        };
        let m = link(
            "wharf",
            &l,
            &[f],
            "https://x/l/t",
            "Alice Smith",
            "bob@example.com",
            Some("Bob"),
        );
        assert_eq!(m.subject, "Alice Smith has shared files with you: Q3");
        assert!(m.body.starts_with("Hello Bob,\n"), "{}", m.body);
        for part in [
            "r.pdf (2.0 MB)",
            "https://x/l/t",
            "1970-01-01T00:00:00Z",
            "password",
            "once",
            "see attached",
        ] {
            assert!(m.body.contains(part), "{part} missing in {}", m.body);
        }
        assert_eq!(m.to, ["bob@example.com"]);
    }
}
