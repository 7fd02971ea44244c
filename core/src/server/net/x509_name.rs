//! The `x509` auth scheme's id: a certificate's subject as Java's
//! `X500Principal.getName()` (RFC 2253) writes it, which is what ZooKeeper's
//! `X509AuthenticationProvider` takes as the id, so ACLs written for Apache ZooKeeper match here.
//!
//! The certificate has already been verified by rustls when this runs; the reader is still
//! strict (every length checked, nothing indexed past its end), and anything it cannot read
//! gives `None`, which refuses the connection rather than granting an id.

/// RFC 2253 keywords Java prints by name; any other attribute is written as its dotted OID
/// with the value as `#` and the hex of its DER encoding.
const KEYWORDS: [(&[u8], &str); 9] = [
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (&[0x55, 0x04, 0x09], "STREET"),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        "DC",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        "UID",
    ),
];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
const TAG_VERSION: u8 = 0xa0;

/// One DER element: its tag, its content, and the whole encoding (tag and length included).
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    encoded: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and what follows.
fn element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    let header = input.len() - rest.len();
    Some((
        Element {
            tag,
            content: &rest[..length],
            encoded: &input[..header + length],
        },
        &rest[length..],
    ))
}

/// The subject of a DER certificate as Java's `X500Principal.getName()` prints it, e.g.
/// `CN=client,OU=Test,O=Example,C=US` (last RDN first, as RFC 2253 orders them).
pub(crate) fn subject_name(certificate_der: &[u8]) -> Option<String> {
    let (certificate, _) = element(certificate_der)?;
    let (to_be_signed, _) = element(certificate.content)?;
    let mut fields = to_be_signed.content;
    let (first, rest) = element(fields)?;
    if first.tag == TAG_VERSION {
        fields = rest;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        fields = element(fields)?.1;
    }
    let (subject, _) = element(fields)?;
    if subject.tag != TAG_SEQUENCE {
        return None;
    }
    name_rfc2253(subject.content)
}

/// The RDNs of a Name, last first, joined by ','; the attributes of one RDN by '+'.
fn name_rfc2253(mut rdns: &[u8]) -> Option<String> {
    let mut written = Vec::new();
    while !rdns.is_empty() {
        let (rdn, rest) = element(rdns)?;
        rdns = rest;
        if rdn.tag != TAG_SET {
            return None;
        }
        let mut attributes = Vec::new();
        let mut members = rdn.content;
        while !members.is_empty() {
            let (attribute, rest) = element(members)?;
            members = rest;
            attributes.push(attribute_rfc2253(&attribute)?);
        }
        written.push(attributes.join("+"));
    }
    written.reverse();
    Some(written.join(","))
}

/// `type=value` for one AttributeTypeAndValue.
fn attribute_rfc2253(attribute: &Element<'_>) -> Option<String> {
    if attribute.tag != TAG_SEQUENCE {
        return None;
    }
    let (oid, rest) = element(attribute.content)?;
    let (value, _) = element(rest)?;
    if oid.tag != TAG_OID {
        return None;
    }
    let keyword = KEYWORDS
        .iter()
        .find(|(known, _)| *known == oid.content)
        .map(|(_, keyword)| *keyword);
    let text = keyword.and_then(|_| string_value(&value));
    Some(match (keyword, text) {
        (Some(keyword), Some(text)) => format!("{keyword}={}", escape(&text)),
        (keyword, _) => {
            let name = keyword.map_or_else(|| dotted_oid(oid.content), str::to_string);
            let hex: String = value.encoded.iter().map(|b| format!("{b:02x}")).collect();
            format!("{name}=#{hex}")
        }
    })
}

/// The text of a DirectoryString-like value, for the string types Java prints as text.
fn string_value(value: &Element<'_>) -> Option<String> {
    match value.tag {
        // UTF8String
        0x0c => String::from_utf8(value.content.to_vec()).ok(),
        // PrintableString, T61String, IA5String, GeneralString: one byte a character.
        0x13 | 0x14 | 0x16 | 0x1b => Some(value.content.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16 big-endian.
        0x1e if value.content.len() % 2 == 0 => {
            let units: Vec<u16> = value
                .content
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// Java's `AVA.toRFC2253String` escaping: a backslash before each of `,=+<>#;"\` wherever it
/// stands, `\00` for NUL, and a backslash before a leading space and before each trailing one.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.push_str("\\00"),
            _ => escaped.push(c),
        }
    }
    if escaped.starts_with(' ') {
        escaped.insert(0, '\\');
    }
    let trailing = escaped.len() - escaped.trim_end_matches(' ').len();
    if trailing > 0 && escaped.len() > trailing {
        let kept = escaped.len() - trailing;
        let mut with_escapes = escaped[..kept].to_string();
        for _ in 0..trailing {
            with_escapes.push_str("\\ ");
        }
        escaped = with_escapes;
    }
    escaped
}

/// An OID's content bytes as dotted decimal (`1.2.840.113549.1.9.1`).
fn dotted_oid(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in content {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn attribute(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        der(
            TAG_SET,
            &der(TAG_SEQUENCE, &[der(TAG_OID, oid), der(tag, value)].concat()),
        )
    }

    /// A certificate shell: only the fields the reader walks past, then the subject.
    fn certificate(subject_rdns: &[Vec<u8>], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(der(TAG_VERSION, &der(0x02, &[2])));
        }
        tbs.extend(der(0x02, &[1]));
        tbs.extend(der(TAG_SEQUENCE, &[]));
        tbs.extend(der(TAG_SEQUENCE, &attribute(&[0x55, 4, 3], 0x0c, b"ca")));
        tbs.extend(der(TAG_SEQUENCE, &[]));
        tbs.extend(der(TAG_SEQUENCE, &subject_rdns.concat()));
        der(TAG_SEQUENCE, &der(TAG_SEQUENCE, &tbs))
    }

    #[test]
    fn subject_is_written_last_rdn_first_with_java_keywords() {
        let rdns = [
            attribute(&[0x55, 4, 6], 0x13, b"US"),
            attribute(&[0x55, 4, 10], 0x0c, b"Example, Inc."),
            attribute(&[0x55, 4, 3], 0x0c, b"client one"),
        ];
        assert_eq!(
            subject_name(&certificate(&rdns, true)).as_deref(),
            Some("CN=client one,O=Example\\, Inc.,C=US")
        );
        assert_eq!(
            subject_name(&certificate(&rdns[2..], false)).as_deref(),
            Some("CN=client one")
        );
    }

    #[test]
    fn unknown_attributes_are_dotted_oids_with_hex_values() {
        // emailAddress (1.2.840.113549.1.9.1) is not an RFC 2253 keyword in Java.
        let email_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
        let rdns = [
            attribute(&email_oid, 0x16, b"a@b"),
            attribute(&[0x55, 4, 3], 0x0c, b"x"),
        ];
        assert_eq!(
            subject_name(&certificate(&rdns, true)).as_deref(),
            Some("CN=x,1.2.840.113549.1.9.1=#1603614062")
        );
    }

    #[test]
    fn special_characters_and_edge_spaces_are_escaped() {
        assert_eq!(
            escape("a=b+c;d<e>f#g\"h\\i"),
            "a\\=b\\+c\\;d\\<e\\>f\\#g\\\"h\\\\i"
        );
        assert_eq!(escape(" lead"), "\\ lead");
        assert_eq!(escape("trail  "), "trail\\ \\ ");
        assert_eq!(escape("bmp ünïcode"), "bmp ünïcode");
    }

    #[test]
    fn malformed_certificates_give_no_name() {
        assert_eq!(subject_name(&[]), None);
        assert_eq!(subject_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject_name(&[0x30, 0x05, 0x30, 0x03, 0x02]), None);
        let mut truncated = certificate(&[attribute(&[0x55, 4, 3], 0x0c, b"x")], true);
        truncated.truncate(truncated.len() - 3);
        assert_eq!(subject_name(&truncated), None);
    }
}
