//! `application/x-www-form-urlencoded` bodies and the URL-plus-sorted-parameters
//! string that Twilio and Mandrill sign.

/// The decoded `name=value` pairs of a form body, in order. Bytes that are not
/// UTF-8 are replaced (a provider that signs them could not have produced them).
pub(crate) fn pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// The first value of `name` in a form body.
pub(crate) fn field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `url` followed by every parameter sorted by name (then value), each written as
/// `name` + `value` with no separators: Twilio's and Mandrill's signed string.
pub(crate) fn url_and_sorted_params(url: &str, mut params: Vec<(String, String)>) -> String {
    params.sort();
    let mut out = String::with_capacity(
        url.len() + params.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>(),
    );
    out.push_str(url);
    for (name, value) in params {
        out.push_str(&name);
        out.push_str(&value);
    }
    out
}

/// Encodes pairs as a form body (for signers).
pub(crate) fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_docs_string() {
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
        assert_eq!(
            url_and_sorted_params("https://mycompany.com/myapp.php?foo=1&bar=2", pairs(body)),
            "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212"
        );
    }

    proptest::proptest! {
        /// Encoding then parsing gives the pairs back; the signed string does not
        /// depend on the order the parameters arrived in.
        #[test]
        fn form_bodies_round_trip(items in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,12}"), 0..8)) {
            let borrowed: Vec<(&str, &str)> = items.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let body = encode(&borrowed);
            proptest::prop_assert_eq!(pairs(body.as_bytes()), items.clone());
            let mut reversed = borrowed.clone();
            reversed.reverse();
            let other = encode(&reversed);
            proptest::prop_assert_eq!(
                url_and_sorted_params("u", pairs(body.as_bytes())),
                url_and_sorted_params("u", pairs(other.as_bytes()))
            );
        }

        #[test]
        fn any_bytes_parse(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = pairs(&body);
        }
    }
}
