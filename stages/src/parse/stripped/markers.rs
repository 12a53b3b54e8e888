//! What starts quoted history or a signature, line by line, in the languages mail clients
//! write: attributions (`On … wrote:` and its translations), forward and original-message
//! separators, Outlook's header block, and device sign-offs ("Sent from my iPhone").

/// Words that end an attribution ("On <date>, <who> wrote:"), lower case: en, de, fr, es, it,
/// nl, pt, ru, ja, zh, ko, pl, sv, da, nb, fi, tr, cs, sk, hu, ro, el, uk, he, ar, vi, id.
const WROTE: &[&str] = &[
    "wrote",
    "writes",
    "schrieb",
    "geschrieben",
    "a écrit",
    "écrit",
    "escribió",
    "escribio",
    "ha scritto",
    "scritto",
    "schreef",
    "heeft geschreven",
    "escreveu",
    "написал",
    "написала",
    "написал(а)",
    "пишет",
    "писал",
    "書きました",
    "のメール",
    "写道",
    "寫道",
    "작성",
    "pisze",
    "napisał",
    "napisała",
    "napisał(a)",
    "skrev",
    "kirjoitti",
    "yazdı",
    "napsal",
    "napsala",
    "napsal(a)",
    "napísal",
    "írta",
    "a scris",
    "έγραψε",
    "написав",
    "כתב",
    "كتب",
    "đã viết",
    "menulis",
];

/// Separators that start forwarded or original messages (lower case, trimmed line start).
const SEPARATORS: &[&str] = &[
    "-----original message-----",
    "----- original message -----",
    "-------- original message --------",
    "-------- forwarded message --------",
    "---------- forwarded message ---------",
    "begin forwarded message:",
    "-----ursprüngliche nachricht-----",
    "-------- ursprüngliche nachricht --------",
    "---------- weitergeleitete nachricht ---------",
    "-------- message original --------",
    "-----message d'origine-----",
    "-------- message d'origine --------",
    "---------- message transféré ---------",
    "-----mensaje original-----",
    "-------- mensaje original --------",
    "---------- mensaje reenviado ---------",
    "-----messaggio originale-----",
    "-------- messaggio originale --------",
    "-----oorspronkelijk bericht-----",
    "-----mensagem original-----",
    "-----исходное сообщение-----",
    "-------- исходное сообщение --------",
    "-------- пересылаемое сообщение --------",
    "-----original meddelelse-----",
    "-----ursprungligt meddelande-----",
    "-----opprinnelig melding-----",
    "-----alkuperäinen viesti-----",
    "-----oryginalna wiadomość-----",
    "-----původní zpráva-----",
    "-----orijinal ileti-----",
    "-------- 原始邮件 --------",
    "------------------ 原始邮件 ------------------",
    "-----原始邮件-----",
    "-----元のメッセージ-----",
    "-----원본 메시지-----",
];

/// `From:` of an Outlook header block, in the client languages Outlook ships.
const FROM: &[&str] = &[
    "from:",
    "von:",
    "de :",
    "de:",
    "da:",
    "van:",
    "от:",
    "od:",
    "från:",
    "fra:",
    "lähettäjä:",
    "kimden:",
    "差出人:",
    "发件人:",
    "寄件者:",
    "보낸 사람:",
    "feladó:",
];

/// `Sent:`/`Date:` of the same block.
const SENT: &[&str] = &[
    "sent:",
    "date:",
    "gesendet:",
    "datum:",
    "envoyé :",
    "envoyé:",
    "envoyé le :",
    "envoyé le:",
    "message du :",
    "date :",
    "enviado:",
    "enviado el:",
    "inviato:",
    "data:",
    "verzonden:",
    "отправлено:",
    "дата:",
    "wysłano:",
    "skickat:",
    "sendt:",
    "lähetetty:",
    "gönderildi:",
    "tarih:",
    "odesláno:",
    "送信日時:",
    "发送时间:",
    "日期:",
    "寄件日期:",
    "보낸 날짜:",
    "elküldve:",
];

/// Whether `text` (one line, or a wrapped attribution joined with spaces) is an attribution:
/// it ends with a colon, names a writing verb of some language, and carries a date or an
/// address (digits or `@`), so a sentence of the reply ending in "wrote:" is not one.
pub fn is_attribution(text: &str) -> bool {
    let l = text.trim().to_lowercase();
    // Zoho: "---- On <date> <who> wrote ----".
    let l = l.trim_matches(|c: char| c == '-' || c.is_whitespace());
    if l.chars().count() > 400 || l.starts_with('>') {
        return false;
    }
    let anchored = |b: &str| b.chars().any(|c| c.is_ascii_digit()) || b.contains('@');
    match l.strip_suffix(':').or_else(|| l.strip_suffix('：')) {
        Some(body) => {
            (anchored(body) && WROTE.iter().any(|w| body.contains(w))) || dated_address(body)
        }
        // "On <date> <who> <addr> wrote" without the colon (some webmails).
        None => {
            l.starts_with("on ")
                && l.contains('@')
                && anchored(l)
                && WROTE.iter().any(|w| l.ends_with(w))
        }
    }
}

/// `<date and time>, "Name" <addr>` before the colon: how several clients attribute without
/// a verb. Needs a time (`10:00`, `18.30`) and the address in angle brackets at the end.
fn dated_address(body: &str) -> bool {
    let b = body.trim_end();
    let Some(open) = b.rfind('<') else {
        return false;
    };
    let addr = &b[open..];
    if !(addr.ends_with('>') && addr.contains('@')) {
        return false;
    }
    let head: Vec<char> = b[..open].chars().collect();
    head.windows(4).any(|w| {
        w[0].is_ascii_digit()
            && matches!(w[1], ':' | '.')
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
    })
}

/// `<who> wrote:` without a date or address (only an attribution when quoted lines follow).
pub fn names_writer(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    let Some(body) = l.strip_suffix(':').or_else(|| l.strip_suffix('：')) else {
        return false;
    };
    l.chars().count() <= 200 && WROTE.iter().any(|w| body.trim_end().ends_with(w))
}

/// Words an attribution wrapped over several lines starts with (its first line alone does
/// not end with a colon): "On", "Am", "Le", "El", "Il", "Op", "Em", "W dniu", "Den", "Dne"…,
/// or a date, or the writer's address.
pub fn may_start_attribution(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    const OPENERS: &[&str] = &[
        "on ",
        "am ",
        "le ",
        "el ",
        "il ",
        "op ",
        "em ",
        "w dniu ",
        "den ",
        "dne ",
        "dňa ",
        "quoting ",
        "citando ",
        "zitat von ",
    ];
    !l.is_empty()
        && !l.starts_with('>')
        && (OPENERS.iter().any(|o| l.starts_with(o))
            || l.chars().any(|c| c.is_ascii_digit())
            || l.contains('@'))
}

/// A line that starts an attribution of its own ("On …"): a wrapped attribution never runs
/// into one, so the line before it is the sender's.
pub fn starts_own_attribution(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    const OPENERS: &[&str] = &[
        "on ", "am ", "le ", "el ", "il ", "op ", "em ", "w dniu ", "den ", "dne ",
    ];
    OPENERS.iter().any(|o| l.starts_with(o))
}

/// Words of a dashed separator's title ("-------- Oprindelig besked --------").
const SEPARATOR_WORDS: &[&str] = &[
    "original",
    "message",
    "besked",
    "nachricht",
    "mensaje",
    "messaggio",
    "bericht",
    "mensagem",
    "meddelande",
    "melding",
    "viesti",
    "wiadomość",
    "zpráva",
    "ileti",
    "сообщение",
    "邮件",
    "メッセージ",
    "메시지",
    "forwarded",
    "weitergeleitet",
    "reenviado",
    "transféré",
    "inoltrato",
    "doorgestuurd",
    "encaminhada",
    "vidarebefordrat",
    "videresendt",
    "välitetty",
];

/// A separator line starting quoted or forwarded history.
pub fn is_separator(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    if SEPARATORS.iter().any(|s| l.starts_with(s)) {
        return true;
    }
    let inner = l.trim_matches(|c: char| c == '-' || c == '=').trim();
    l.starts_with("--")
        && l.ends_with("--")
        && !inner.is_empty()
        && inner.chars().count() <= 40
        && SEPARATOR_WORDS.iter().any(|w| inner.contains(w))
}

/// A rule: a line of only `-`, `_`, `=`, `*` or `—` (four or more).
pub fn is_rule(line: &str) -> bool {
    let l = line.trim();
    l.chars().count() >= 4 && l.chars().all(|c| matches!(c, '-' | '_' | '=' | '*' | '—'))
}

fn starts_any(line: &str, set: &[&str]) -> bool {
    let s = line
        .trim_start_matches(['*', ' ', '\t'])
        .to_lowercase()
        .replace("**", "");
    set.iter().any(|p| s.starts_with(p))
}

/// Outlook's header block at `i`: `From:` then `Sent:`/`Date:` within the next four lines,
/// possibly after a rule of underscores.
pub fn is_outlook_block(lines: &[&str], i: usize) -> bool {
    let l = lines[i].trim();
    let is_rule = l.chars().count() >= 10 && l.chars().all(|c| c == '_');
    let from_at = if is_rule { i + 1 } else { i };
    if from_at >= lines.len() {
        return false;
    }
    if starts_any(lines[from_at], FROM)
        && lines[from_at + 1..]
            .iter()
            .take(4)
            .any(|s| starts_any(s, SENT))
    {
        return true;
    }
    // Three header lines in a row, one of them the sender ("Message du :", "De :", "A :").
    let header = |s: &&str| starts_any(s, FROM) || starts_any(s, SENT) || starts_any(s, OTHER);
    let run: Vec<&&str> = lines[from_at..].iter().take_while(|s| header(s)).collect();
    run.len() >= 3 && run.iter().any(|s| starts_any(s, FROM))
}

/// The other header names of a quoted header block.
const OTHER: &[&str] = &[
    "to:",
    "to :",
    "cc:",
    "subject:",
    "à :",
    "à:",
    "a :",
    "a:",
    "an:",
    "para:",
    "til:",
    "till:",
    "copie à :",
    "sujet :",
    "objet :",
    "objet:",
    "betreff:",
    "asunto:",
    "oggetto:",
    "onderwerp:",
    "assunto:",
    "emne:",
    "ämne:",
    "aihe:",
    "konu:",
    "temat:",
    "předmět:",
    "тема:",
    "кому:",
    "件名:",
    "主题:",
    "제목:",
    "message du :",
    "vastaanottaja:",
];

/// A mailing list's footer: a rule of underscores, then the list's name or address.
pub fn is_list_footer(lines: &[&str], i: usize) -> bool {
    let l = lines[i].trim();
    if l.chars().count() < 2 || !l.chars().all(|c| c == '_') {
        return false;
    }
    lines[i + 1..]
        .iter()
        .find(|n| !n.trim().is_empty())
        .is_some_and(|n| {
            let n = n.to_lowercase();
            n.contains("mailing list") || n.contains("listinfo") || n.contains("unsubscribe")
        })
}

/// Words naming a device or app after "Sent from my …".
const DEVICES: &[&str] = &[
    "iphone",
    "ipad",
    "ipod",
    "android",
    "blackberry",
    "samsung",
    "galaxy",
    "mobile",
    "phone",
    "smartphone",
    "huawei",
    "pixel",
    "nokia",
    "htc",
    "sony",
    "xperia",
    "lg",
    "motorola",
    "windows",
    "tablet",
    "kindle",
    "verizon",
    "t-mobile",
    "sprint",
    "oneplus",
    "xiaomi",
    "cell",
    "apple",
    "watch",
    "mail",
    "outlook",
    "wireless",
    "handheld",
    "fairphone",
];

/// A sign-off a mobile client or webmail adds ("Sent from my iPhone", "Get Outlook for
/// iOS", "Von meinem iPhone gesendet", "Envoyé de mon iPad"…). Only the short, formulaic
/// line: "Sent from my desk, is much easier to type" is the sender's own sentence.
pub fn is_device_signature(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    let l = l.trim_end_matches(['.', '!']);
    if l.chars().count() > 80 {
        return false;
    }
    if let Some(rest) = l.strip_prefix("sent from my ") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let first = words
            .first()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()));
        // A device word, or a brand as written (capitalised: "Wiko RIDGE FAB 4G").
        let brand = line
            .trim()
            .get("sent from my ".len()..)
            .is_some_and(|r| r.starts_with(|c: char| c.is_uppercase()));
        return words.len() <= 6
            && (brand || first.is_some_and(|f| DEVICES.iter().any(|d| f.starts_with(d))))
            && !rest.contains(", ");
    }
    // "Sent from TypeApp<https://…>": an app's sign-off with its link.
    if let Some(rest) = l.strip_prefix("sent from ") {
        let name = rest.split('<').next().unwrap_or_default();
        return rest.contains("<http") && name.split_whitespace().count() <= 3;
    }
    const FIXED: &[&str] = &[
        "sent from outlook",
        "get outlook for ",
        "sent from mail for windows",
        "sent from yahoo mail",
        "gesendet von outlook",
        "holen sie sich outlook",
        "envoyé à partir de outlook",
        "envoyé à partir d'outlook",
        "obtenir outlook pour",
        "obtener outlook para",
        "scarica outlook per",
        "enviado do outlook",
        "verzonden vanuit outlook",
        "sent from my mobile",
        "von meinem iphone gesendet",
        "von meinem ipad gesendet",
        "von meinem smartphone gesendet",
        "envoyé de mon iphone",
        "envoyé de mon ipad",
        "enviado desde mi iphone",
        "enviado desde mi ipad",
        "enviado do meu iphone",
        "enviado de meu iphone",
        "inviato da iphone",
        "inviato dal mio iphone",
        "verzonden met mijn iphone",
        "verstuurd vanaf mijn iphone",
        "skickat från min iphone",
        "sendt fra min iphone",
        "sendt fra min ipad",
        "lähetetty iphonesta",
        "отправлено с iphone",
        "отправлено с моего iphone",
        "wysłane z iphone",
        "wysłane z mojego iphone",
        "odesláno z iphonu",
        "iphoneから送信",
        "从我的iphone发送",
        "發自我的iphone",
        "나의 iphone에서 보냄",
        "iphone'umdan gönderildi",
    ];
    let plain = l.split('<').next().unwrap_or_default();
    FIXED.iter().any(|f| l.starts_with(f)) && plain.chars().count() <= 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_signatures_but_never_a_sentence() {
        for s in [
            "Sent from my iPhone",
            "Sent from my Samsung Galaxy smartphone.",
            "Sent from my BlackBerry® wireless device",
            "Get Outlook for iOS",
            "Von meinem iPhone gesendet",
            "Envoyé de mon iPad",
            "iPhoneから送信",
        ] {
            assert!(is_device_signature(s), "{s}");
        }
        for s in [
            "Sent from my desk, is much easier to type on a real keyboard.",
            "Sent from my desk",
            "Sent from my phone, which is why the numbers above are rounded: please check them.",
        ] {
            assert!(!is_device_signature(s), "{s}");
        }
    }

    #[test]
    fn attributions_in_many_languages() {
        for s in [
            "On Mon, 23 Nov 2026 at 10:00, Ann <ann@example.com> wrote:",
            "Am 23.11.2026 um 10:00 schrieb Ann Example <ann@example.com>:",
            "Le lun. 23 nov. 2026 à 10:00, Ann <ann@example.com> a écrit :",
            "El lun, 23 nov 2026 a las 10:00, Ann (<ann@example.com>) escribió:",
            "Il giorno lun 23 nov 2026 alle ore 10:00 Ann <ann@example.com> ha scritto:",
            "Op ma 23 nov. 2026 om 10:00 schreef Ann <ann@example.com>:",
            "Em seg., 23 de nov. de 2026 às 10:00, Ann <ann@example.com> escreveu:",
            "пн, 23 нояб. 2026 г. в 10:00, Ann <ann@example.com>: написал(а):",
            "2026年11月23日(月) 10:00 Ann <ann@example.com> さんは書きました:",
            "Ann <ann@example.com> 于2026年11月23日周一 10:00写道：",
            "2026년 11월 23일 (월) 오전 10:00, Ann <ann@example.com>님이 작성:",
            "W dniu 23.11.2026 o 10:00 Ann <ann@example.com> pisze:",
            "Den mån 23 nov. 2026 kl 10:00 skrev Ann <ann@example.com>:",
            "Den 23. nov. 2026 kl. 10.00 skrev Ann <ann@example.com>:",
            "ma 23.11.2026 klo 10.00 Ann (ann@example.com) kirjoitti:",
            "Ann <ann@example.com>, 23 Kas 2026 Pzt, 10:00 tarihinde şunu yazdı:",
            "Dne po 23. 11. 2026 10:00 uživatel Ann <ann@example.com> napsal:",
        ] {
            assert!(is_attribution(s), "{s}");
        }
        for s in [
            "Here is what Ann wrote:",
            "> On Mon, 1 Jan 2026, Ann wrote:",
            "Notes:",
        ] {
            assert!(!is_attribution(s), "{s}");
        }
    }
}
