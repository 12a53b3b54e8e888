//! `message.thread_id` over reply chains: the header shapes real clients write (Gmail,
//! Outlook/Exchange, Apple Mail, Thunderbird, a mobile client that writes only `In-Reply-To`,
//! a list digest with folded `References`), each mail parsed by the worker's parser; and the
//! reply/parent pairs of the shared corpus (a reply whose parent is enclosed in it).

use std::io::Write as _;
use std::path::Path;

use postwire_e2e::payload::fixture_event;

fn thread_of(headers: &str) -> Option<String> {
    let raw = format!("{headers}Content-Type: text/plain\r\n\r\nbody\r\n").replace('\n', "\r\n");
    let raw = raw.replace("\r\r\n", "\r\n");
    let ev = fixture_event(raw.as_bytes());
    ev["message"]["thread_id"].as_str().map(str::to_string)
}

/// One conversation of five mails, each from another client, every header shape as the
/// client writes it (ids as the clients make them).
#[test]
fn a_conversation_across_clients_has_one_thread_id() {
    let root = "CAKx9nW2=Qm5+oVd0rX_Aq@mail.gmail.com";
    let outlook = "DB9PR03MB7451C1E2A0F4B1D8E5C2A9F7C7A12@DB9PR03MB7451.eurprd03.prod.outlook.com";
    let apple = "4C0E3F1A-7B2D-4E55-9A1C-2F6B8D0E9A31@example.org";
    let tbird = "8f3c2a51-1d0e-4c2b-b7a9-0e6d5c4b3a21@example.net";
    let chain = [
        // Gmail starts the conversation.
        format!(
            "From: Ann <ann@gmail.com>\nTo: team@acme.test\nSubject: Offsite\nMessage-ID: <{root}>\n"
        ),
        // Outlook answers: References and In-Reply-To, plus Exchange's Thread-Index.
        format!(
            "From: Bob <bob@contoso.example>\nTo: team@acme.test\nSubject: RE: Offsite\n\
Thread-Topic: Offsite\nThread-Index: AQHZ1a2b3c4d5e6f7g8h9i0j==\nMessage-ID: <{outlook}>\n\
References: <{root}>\nIn-Reply-To: <{root}>\n"
        ),
        // Apple Mail replies to Outlook: References folded over two lines.
        format!(
            "From: Cy <cy@example.org>\nSubject: Re: Offsite\nMessage-Id: <{apple}>\n\
References: <{root}>\n <{outlook}>\nIn-Reply-To: <{outlook}>\n"
        ),
        // Thunderbird replies to Apple Mail, ids on one line, the root's domain upper-cased by
        // a gateway on the way.
        format!(
            "From: Di <di@example.net>\nSubject: Re: Offsite\nMessage-ID: <{tbird}>\n\
References: <{}> <{outlook}> <{apple}>\nIn-Reply-To: <{apple}>\n",
            root.replace("mail.gmail.com", "MAIL.GMAIL.COM")
        ),
        // Gmail answers the whole thread again.
        format!(
            "From: Ann <ann@gmail.com>\nSubject: Re: Offsite\nMessage-ID: <CAKx9nW3@mail.gmail.com>\n\
In-Reply-To: <{tbird}>\nReferences: <{root}>\n\t<{outlook}>\n\t<{apple}>\n\t<{tbird}>\n"
        ),
    ];
    let ids: Vec<_> = chain.iter().map(|h| thread_of(h)).collect();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(id.as_deref(), Some(root), "mail {n} of the chain");
    }
}

/// A client that drops `References` (some mobile and web clients write only `In-Reply-To`):
/// a reply to the first mail still joins it; a reply to a reply joins its parent, which is
/// all the mail itself says.
#[test]
fn a_reply_without_references_joins_its_parent() {
    let root = "<0100018c2f1e9a3b-7d6c5b4a-3e2f-4a1b-9c8d-7e6f5a4b3c2d-000000@email.amazonses.com>";
    let first = thread_of(&format!("From: a@x.example\nMessage-ID: {root}\n"));
    let reply = thread_of(&format!(
        "From: b@y.example\nMessage-ID: <mob.1@y.example>\nIn-Reply-To: {root}\n"
    ));
    assert_eq!(first, reply);
    assert_eq!(
        first.as_deref(),
        Some("0100018c2f1e9a3b-7d6c5b4a-3e2f-4a1b-9c8d-7e6f5a4b3c2d-000000@email.amazonses.com")
    );
    // In-Reply-To with a comment and a second id (RFC 822 style), as old clients write it.
    let old = thread_of(&format!(
        "From: c@z.example\nMessage-ID: <old.2@z.example>\nIn-Reply-To: {root} (from a@x.example)\n"
    ));
    assert_eq!(old, first);
    // No id anywhere: no thread.
    assert_eq!(thread_of("From: d@w.example\n"), None);
}

fn corpus() -> Option<std::path::PathBuf> {
    let p = match std::env::var("POSTWIRE_CORPUS") {
        Ok(p) => std::path::PathBuf::from(p),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    p.is_dir().then_some(p)
}

/// Real replies from the shared corpus that enclose the mail they answer (a forward from
/// Zimbra, an Office 365 bounce): the reply and its enclosed parent share the thread id.
#[test]
fn corpus_replies_share_the_thread_of_the_mail_they_enclose() {
    let Some(dir) = corpus() else {
        let _ = writeln!(
            std::io::stderr(),
            "threads: the shared corpus is absent; only the built chains were checked"
        );
        return;
    };
    let mut pairs = 0;
    for f in [
        "php-mime-mail-parser/issue158d",
        "mailgun-flanker/bounce/office365.eml",
    ] {
        let raw = std::fs::read(dir.join(f)).expect("corpus file");
        let ev = fixture_event(&raw);
        let outer = ev["message"]["thread_id"]
            .as_str()
            .expect("reply has a thread");
        let enclosed: Vec<_> = ev["message"]["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["message"]["thread_id"].as_str())
            .collect();
        assert!(
            enclosed.contains(&outer),
            "{f}: thread {outer} not among the enclosed {enclosed:?}"
        );
        pairs += 1;
    }
    let _ = writeln!(
        std::io::stderr(),
        "threads: {pairs} corpus reply/parent pairs share their thread id"
    );
}
