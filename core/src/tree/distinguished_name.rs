//! Which `x509` ACL ids are valid: the names Java's `new X500Principal(name)` parses, as
//! ZooKeeper's `X509AuthenticationProvider.isValid` asks, so ours refuses exactly the ids it
//! refuses (InvalidAcl).
//!
//! The JDK's parser (`sun.security.x509`: `X500Name.parseDN`, `RDN`, `AVA` in its default
//! format, `ObjectIdentifier`, and `DerValue` for `#hex` values) has quirks that decide
//! validity, so they are followed here rather than RFC 2253: a ',' or ';' separates RDNs unless
//! escaped or inside an odd count of quotes seen since the last separator; a value ends at its
//! first unescaped ',', '+' or ';' and the rest of its attribute is not read; `#hex` must be
//! one complete BER value. Not followed: non-ASCII digits in OIDs (Java's `Character.digit`
//! takes them) and the JDK's limit on an OID's encoded size.

/// Attribute keywords Java's `X500Principal` parses (its `AVAKeyword` table), in capitals.
const KEYWORDS: [&str; 21] = [
    "CN",
    "C",
    "L",
    "S",
    "ST",
    "O",
    "OU",
    "T",
    "IP",
    "STREET",
    "DC",
    "DNQUALIFIER",
    "DNQ",
    "SURNAME",
    "GIVENNAME",
    "INITIALS",
    "GENERATION",
    "EMAIL",
    "EMAILADDRESS",
    "UID",
    "SERIALNUMBER",
];

/// Characters that may follow a '\' in an unquoted value (`AVA.specialCharsDefault`).
const ESCAPABLE_UNQUOTED: &str = ",=\n+<>#;\\\" ";
/// Characters that may follow a '\' in a quoted value (`AVA.specialChars1779`).
const ESCAPABLE_QUOTED: &str = ",=\n+<>#;\\\"";
/// Characters an unquoted value may not hold unescaped (`AVA.escapedDefault`).
const MUST_BE_ESCAPED: &str = ",+<>;\"";

/// True when `new X500Principal(name)` parses `name` (the empty name included).
pub(super) fn is_valid(name: &str) -> bool {
    // Java indexes UTF-16 units; splitting and escapes only look at ASCII, so chars serve.
    let name: Vec<char> = name.chars().collect();
    if name.is_empty() {
        return true;
    }
    let mut dn_offset = 0;
    let mut search_offset = 0;
    let mut quote_count = 0;
    while let Some(end) = find(&name, search_offset, |c| c == ',' || c == ';') {
        quote_count += count_quotes(&name, search_offset, end);
        if quote_count != 1 && !escaped(&name, end, search_offset) {
            if !is_valid_rdn(&name[dn_offset..end]) {
                return false;
            }
            dn_offset = end + 1;
            quote_count = 0;
        }
        search_offset = end + 1;
    }
    is_valid_rdn(&name[dn_offset..])
}

fn find(text: &[char], from: usize, wanted: impl Fn(char) -> bool) -> Option<usize> {
    text[from..]
        .iter()
        .position(|&c| wanted(c))
        .map(|index| from + index)
}

/// `X500Name.countQuotes`: quotes in `text[from..to]` not preceded by '\' (the first counts
/// whatever precedes it).
fn count_quotes(text: &[char], from: usize, to: usize) -> usize {
    (from..to)
        .filter(|&index| text[index] == '"' && (index == from || text[index - 1] != '\\'))
        .count()
}

/// `X500Name.escaped`: whether the separator at `end` is escaped. With two or more '\' before
/// it, Java counts every '\' since `search_offset`, consecutive or not.
fn escaped(text: &[char], end: usize, search_offset: usize) -> bool {
    if end == 1 && text[0] == '\\' {
        return true;
    }
    if end < 2 || text[end - 1] != '\\' {
        return false;
    }
    if text[end - 2] != '\\' {
        return true;
    }
    let backslashes = (search_offset..end).filter(|&i| text[i] == '\\').count();
    backslashes % 2 == 1
}

/// `RDN(String)`: attributes separated by a '+' that is not first, not after '\', and not
/// inside an odd count of quotes; none may be empty.
fn is_valid_rdn(rdn: &[char]) -> bool {
    let mut ava_offset = 0;
    let mut search_offset = 0;
    let mut quote_count = 0;
    while let Some(plus) = find(rdn, search_offset, |c| c == '+') {
        quote_count += count_quotes(rdn, search_offset, plus);
        if plus > 0 && rdn[plus - 1] != '\\' && quote_count != 1 {
            if !is_valid_attribute(&rdn[ava_offset..plus]) {
                return false;
            }
            ava_offset = plus + 1;
            quote_count = 0;
        }
        search_offset = plus + 1;
    }
    is_valid_attribute(&rdn[ava_offset..])
}

/// `AVA(Reader)` in the default format: `keyword=value`, the value `#hex`, quoted, or plain.
fn is_valid_attribute(attribute: &[char]) -> bool {
    let Some(equals) = attribute.iter().position(|&c| c == '=') else {
        return false;
    };
    if !is_valid_keyword(&attribute[..equals].iter().collect::<String>()) {
        return false;
    }
    let mut value = attribute[equals + 1..]
        .iter()
        .copied()
        .skip_while(|&c| c == ' ' || c == '\n');
    match value.next() {
        None => true,
        Some('#') => is_valid_hex_value(value),
        Some('"') => is_valid_quoted_value(value),
        Some(first) => is_valid_plain_value(first, value),
    }
}

/// `AVAKeyword.getOID` in the default format: a known keyword, or an OID (`OID.` optional).
fn is_valid_keyword(keyword: &str) -> bool {
    let keyword = keyword.to_uppercase();
    // Java's String.trim: every char up to ' '.
    let keyword = keyword.trim_matches(|c: char| c <= ' ');
    if KEYWORDS.contains(&keyword) {
        return true;
    }
    let oid = keyword.strip_prefix("OID.").unwrap_or(keyword);
    oid.starts_with(|c: char| c.is_ascii_digit()) && is_valid_oid(oid)
}

/// `ObjectIdentifier(String)`: at least two components, each a Java integer; the first 0 to
/// 2, the second at most 39 unless the first is 2, none negative.
fn is_valid_oid(oid: &str) -> bool {
    let mut count = 0;
    let mut first = 0;
    for component in oid.split('.') {
        let Some((negative, magnitude)) = java_integer(component) else {
            return false;
        };
        if negative && magnitude != Some(0) {
            return false;
        }
        match count {
            0 if magnitude.is_some_and(|value| value <= 2) => first = magnitude.unwrap_or(0),
            0 => return false,
            1 if first != 2 && magnitude.is_none_or(|value| value > 39) => return false,
            _ => {}
        }
        count += 1;
    }
    count >= 2
}

/// Java's `Integer.parseInt` (up to 9 chars) or `BigInteger(String)`, ASCII digits only:
/// (negative, the magnitude, None when it passes u64).
fn java_integer(text: &str) -> Option<(bool, Option<u64>)> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((negative, digits.parse::<u64>().ok()))
}

/// `AVA.parseHexString` then `new DerValue(bytes)`: an even, non-zero count of hex digits up
/// to the value's end, encoding exactly one BER value.
fn is_valid_hex_value(value: impl Iterator<Item = char>) -> bool {
    let mut digits = Vec::new();
    for c in value {
        if matches!(c, ',' | '+' | ';') {
            break;
        }
        match c.to_digit(16) {
            Some(digit) => digits.push(digit as u8),
            None => return false,
        }
    }
    if digits.is_empty() || digits.len() % 2 == 1 {
        return false;
    }
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect();
    is_one_ber_value(&bytes)
}

/// `DerValue(byte[])` with BER allowed and nothing after the value: a tag below 31, then a
/// short or long (at most 4 bytes, below 2^31) length and exactly that much content, or, for
/// a constructed tag, an indefinite length closed by its end-of-contents (`indefinite_end`).
fn is_one_ber_value(bytes: &[u8]) -> bool {
    if bytes.len() < 2 || bytes[0] & 0x1f == 0x1f {
        return false;
    }
    if bytes[1] == 0x80 {
        let constructed = bytes[0] & 0x20 != 0;
        return constructed && indefinite_end(bytes) == Some(bytes.len());
    }
    match ber_length(&bytes[1..]) {
        Some((length, length_bytes)) => bytes.len() as u64 == 1 + length_bytes as u64 + length,
        None => false,
    }
}

/// A definite length at the start of `bytes`: (the length, the bytes it took), or None for
/// more than 4 length bytes, too few bytes, or a length past 2^31 - 1.
fn ber_length(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    if first & 0x80 == 0 {
        return Some((u64::from(first), 1));
    }
    let count = usize::from(first & 0x7f);
    if count > 4 || bytes.len() < 1 + count {
        return None;
    }
    let length = bytes[1..1 + count]
        .iter()
        .fold(0u64, |length, &byte| length << 8 | u64::from(byte));
    (length <= i32::MAX as u64).then_some((length, 1 + count))
}

/// `DerIndefLenConverter`: where the indefinite-length value at the start of `bytes` ends.
/// Its elements are one tag byte (any) and a length: definite ones are skipped whole,
/// indefinite ones (constructed or not) nest until their own end-of-contents (00 00). Kept
/// as a count of open values, not recursion, so deep nesting cannot exhaust the stack.
fn indefinite_end(bytes: &[u8]) -> Option<usize> {
    let mut position = 2;
    let mut open = 1;
    while open > 0 {
        if bytes.get(position..position + 2)? == [0, 0] {
            open -= 1;
            position += 2;
            continue;
        }
        position += 1;
        if *bytes.get(position)? == 0x80 {
            open += 1;
            position += 1;
            continue;
        }
        let (length, length_bytes) = ber_length(&bytes[position..])?;
        position = usize::try_from(position as u64 + length_bytes as u64 + length).ok()?;
        if position > bytes.len() {
            return None;
        }
    }
    Some(position)
}

/// `AVA.parseQuotedString`: up to a closing quote, '\' escaping a special char or a hex pair;
/// after it only blanks until the attribute's end.
fn is_valid_quoted_value(mut value: impl Iterator<Item = char>) -> bool {
    loop {
        match value.next() {
            None => return false,
            Some('"') => break,
            Some('\\') => match value.next() {
                None => return false,
                Some(c) if c.is_ascii_hexdigit() => {
                    if !value.next().is_some_and(|c| c.is_ascii_hexdigit()) {
                        return false;
                    }
                }
                Some(c) if ESCAPABLE_QUOTED.contains(c) => {}
                Some(_) => return false,
            },
            Some(_) => {}
        }
    }
    value.all(|c| c == ' ' || c == '\n')
}

/// `AVA.parseString` in the default format: up to the first unescaped ',', '+' or ';' (the
/// rest is not read); '\' escapes a special char or starts a hex pair; `,+<>;"` must be
/// escaped (only the first char can be one of the first three: later they end the value).
fn is_valid_plain_value(first: char, mut value: impl Iterator<Item = char>) -> bool {
    let mut c = Some(first);
    while let Some(current) = c {
        if current == '\\' {
            match value.next() {
                None => return false,
                Some(escaped) if escaped.is_ascii_hexdigit() => {
                    if !value.next().is_some_and(|c| c.is_ascii_hexdigit()) {
                        return false;
                    }
                }
                Some(escaped) if ESCAPABLE_UNQUOTED.contains(escaped) => {}
                Some(_) => return false,
            }
        } else if MUST_BE_ESCAPED.contains(current) {
            return false;
        }
        c = value
            .next()
            .filter(|&next| !matches!(next, ',' | '+' | ';'));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_as_java_17_parses_them() {
        // Each as `new X500Principal(name)` answered on OpenJDK 17 (Apache ZooKeeper 3.8's).
        for valid in [
            "",
            "CN=",
            "CN=a",
            " CN = a ",
            "OID.2.5.4.3=x",
            "2.5.4.3=x",
            "1.2=x",
            "cn=a;o=b",
            "CN=a+O=b",
            "CN=\"a\"",
            "CN=\"a,b\"",
            "CN=#040161",
            "CN=#30800000",
            "CN=#3080040200000000",
            "CN=#3080048000000000",
            "CN=#3082000100",
            "CN=a\nO=b",
            "CN=a\\,b",
            "CN=\\4a",
            "CN=client one,OU=Test,O=Example\\, Inc.,C=US",
        ] {
            assert!(is_valid(valid), "{valid:?}");
        }
        for invalid in [
            " ",
            "\t",
            "nonsense",
            "CN=a,,O=b",
            "CN=x,FOO=y",
            "=x",
            "CN=a,",
            "CN=a\\",
            "OID.1=x",
            "CN=#0403",
            "CN=#zz",
            "CN=#",
            "CN=#041",
            "CN=#3080",
            "CN=#3080000000",
            "CN=#04800000",
            "CN=#308004020000",
            "CN=#30800485000000000100000000",
            "CN=\"a",
            "CN=\"a\"b",
            "CN=a<b",
            "CN=\\q",
            "CN=\\4",
            "3.1=x",
            "1.40=x",
        ] {
            assert!(!is_valid(invalid), "{invalid:?}");
        }
    }
}
