//! Unit tests: RFC 7512's own examples, every attribute through a round trip, the errors and
//! their messages, matching, and a few thousand pseudo-random inputs.

use crate::{
    LibraryFields, ObjectFields, ObjectType, Pkcs11Uri, SlotFields, TokenFields, UriError,
};

fn parse(s: &str) -> Pkcs11Uri {
    match s.parse::<Pkcs11Uri>() {
        Ok(uri) => uri,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn refuse(s: &str) -> UriError {
    match s.parse::<Pkcs11Uri>() {
        Ok(uri) => panic!("{s:?} should be refused, parsed as {uri:?}"),
        Err(e) => e,
    }
}

/// Display, then parse again: the same value, and formatting is stable.
fn assert_round_trip(uri: &Pkcs11Uri) {
    let text = uri.to_string();
    let again = parse(&text);
    assert_eq!(&again, uri, "{text}");
    assert_eq!(again.to_string(), text);
}

/// The examples of RFC 7512 section 3, with the line breaks the RFC adds for readability
/// removed.
const RFC_EXAMPLES: [&str; 13] = [
    "pkcs11:",
    "pkcs11:object=my-pubkey;type=public",
    "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
    "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;\
     model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=\
     ?pin-source=file:/etc/token_pin",
    "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
    "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
    "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.\
     ?pin-value=the-pin",
    "pkcs11:slot-description=Sun%20Metaslot",
    "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;\
     library-version=1.23",
    "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;\
     id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
    "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
    "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;\
     type=cert",
    "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a\
     ?pin-source=file:/etc/token_pin&vendor-bbb=value-b",
];

#[test]
fn rfc_examples_parse_and_round_trip() {
    for example in RFC_EXAMPLES {
        assert_round_trip(&parse(example));
    }
}

#[test]
fn rfc_examples_decode_to_the_values_they_name() {
    assert_eq!(parse(RFC_EXAMPLES[0]), Pkcs11Uri::new());

    let u = parse(RFC_EXAMPLES[1]);
    assert_eq!(u.object(), Some("my-pubkey"));
    assert_eq!(u.object_type(), Some(ObjectType::Public));

    let u = parse(RFC_EXAMPLES[2]);
    assert_eq!(u.object_type(), Some(ObjectType::Private));
    assert_eq!(u.pin_source(), Some("file:/etc/token"));

    let u = parse(RFC_EXAMPLES[3]);
    assert_eq!(u.token(), Some("The Software PKCS#11 Softtoken"));
    assert_eq!(u.manufacturer(), Some("Snake Oil, Inc."));
    assert_eq!(u.model(), Some("1.0"));
    assert_eq!(u.object(), Some("my-certificate"));
    assert_eq!(u.object_type(), Some(ObjectType::Cert));
    assert_eq!(
        u.id(),
        Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
    );
    assert_eq!(u.serial(), Some(""));
    assert_eq!(u.pin_source(), Some("file:/etc/token_pin"));
    // The canonical form: the RFC's attribute order, `serial` kept though empty.
    assert_eq!(
        u.to_string(),
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;\
         serial=;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91\
         ?pin-source=file:/etc/token_pin"
    );

    assert_eq!(parse(RFC_EXAMPLES[4]).module_name(), Some("mypkcs11"));
    assert_eq!(
        parse(RFC_EXAMPLES[5]).module_path(),
        Some("/mnt/libmypkcs11.so.1")
    );

    let u = parse(RFC_EXAMPLES[6]);
    assert_eq!(u.token(), Some("Software PKCS#11 softtoken"));
    assert_eq!(u.pin_value(), Some("the-pin"));
    assert_eq!(u.pin_source(), None);

    assert_eq!(
        parse(RFC_EXAMPLES[7]).slot_description(),
        Some("Sun Metaslot")
    );

    let u = parse(RFC_EXAMPLES[8]);
    assert_eq!(u.library_manufacturer(), Some("Snake Oil, Inc."));
    assert_eq!(u.library_description(), Some("Soft Token Library"));
    assert_eq!(u.library_version(), Some((1, 23)));

    let u = parse(RFC_EXAMPLES[9]);
    assert_eq!(u.token(), Some("My token% created by Joe"));
    assert_eq!(u.library_version(), Some((3, 0)));
    assert_eq!(
        u.id(),
        Some(&[1, 2, 3, 0xba, 0xdd, 0xca, 0xfe, 4, 5, 6][..])
    );
    // Lowercase escapes come back uppercase.
    assert!(u.to_string().ends_with("id=%01%02%03%BA%DD%CA%FE%04%05%06"));

    assert_eq!(
        parse(RFC_EXAMPLES[10]).token(),
        Some("A name with a substring %;")
    );
    assert_eq!(
        parse(RFC_EXAMPLES[11]).token(),
        Some("Name with a small A with acute: \u{e1}")
    );
    assert_eq!(
        parse(RFC_EXAMPLES[11]).to_string(),
        RFC_EXAMPLES[11],
        "only what must be escaped is"
    );

    let u = parse(RFC_EXAMPLES[12]);
    assert_eq!(
        u.vendor_path(),
        &[("vendor-aaa".to_owned(), "value-a".to_owned())]
    );
    assert_eq!(
        u.vendor_query(),
        &[("vendor-bbb".to_owned(), "value-b".to_owned())]
    );
    assert_eq!(u.to_string(), RFC_EXAMPLES[12]);
}

#[test]
fn scheme_is_case_insensitive_and_written_lowercase() {
    for s in ["PKCS11:token=a", "Pkcs11:token=a", "pKcS11:token=a"] {
        let u = parse(s);
        assert_eq!(u.token(), Some("a"));
        assert_eq!(u.to_string(), "pkcs11:token=a");
    }
    // An empty query is allowed by the grammar and disappears.
    assert_eq!(parse("pkcs11:?").to_string(), "pkcs11:");
    assert_eq!(parse("pkcs11:token=a?").to_string(), "pkcs11:token=a");
}

fn every_byte() -> Vec<u8> {
    (0..=255u8).collect()
}

fn full_uri() -> Pkcs11Uri {
    Pkcs11Uri::new()
        .with_token("Ключ 🔑 ;?&=%/# \u{0}\t")
        .with_manufacturer("Snake Oil, Inc.")
        .with_serial("0123456789abcdef")
        .with_model("M ; 1")
        .with_library_manufacturer("lib;man")
        .with_library_description("desc?x")
        .with_library_version((255, 0))
        .with_object("élan/key")
        .with_object_type(ObjectType::SecretKey)
        .with_id(every_byte())
        .with_slot_description("slot \"d\"")
        .with_slot_manufacturer("<m>")
        .with_slot_id(u64::MAX)
        .with_vendor_path("x-a", "1;2")
        .and_then(|u| u.with_vendor_path("X_b-2", ""))
        .and_then(|u| u.with_vendor_query("x-q", "a&b"))
        .and_then(|u| u.with_vendor_query("x-q", "again"))
        .unwrap_or_else(|e| panic!("vendor names: {e}"))
        .with_pin_source("|/usr/bin/pin --slot 1&2")
        .with_module_name("my module")
        .with_module_path("/usr/lib/x.so")
}

#[test]
fn every_attribute_round_trips() {
    let uri = full_uri();
    assert_round_trip(&uri);
    let again = parse(&uri.to_string());
    assert_eq!(again.token(), Some("Ключ 🔑 ;?&=%/# \u{0}\t"));
    assert_eq!(again.id(), Some(&every_byte()[..]));
    assert_eq!(again.slot_id(), Some(u64::MAX));
    assert_eq!(again.library_version(), Some((255, 0)));
    assert_eq!(again.pin_source(), Some("|/usr/bin/pin --slot 1&2"));
    assert_eq!(again.module_name(), Some("my module"));
    assert_eq!(again.module_path(), Some("/usr/lib/x.so"));
    assert_eq!(again.vendor_query().len(), 2);

    // The pin-value side of the pin-source / pin-value pair, and every object type.
    for t in ObjectType::ALL {
        let uri = full_uri().with_object_type(t).with_pin_value("1234 &?%");
        assert_eq!(uri.pin_source(), None, "pin-value replaces pin-source");
        assert_round_trip(&uri);
        assert_eq!(parse(&uri.to_string()).pin_value(), Some("1234 &?%"));
    }
    // Empty values that the grammar allows.
    let empty = Pkcs11Uri::new()
        .with_token("")
        .with_id(Vec::new())
        .with_pin_value("");
    assert_eq!(empty.to_string(), "pkcs11:token=;id=?pin-value=");
    assert_round_trip(&empty);
}

#[test]
fn id_is_written_fully_escaped() {
    let uri = Pkcs11Uri::new().with_id(every_byte());
    let expected: String = (0..=255u8).map(|b| format!("%{b:02X}")).collect();
    assert_eq!(uri.to_string(), format!("pkcs11:id={expected}"));
    assert_eq!(
        Pkcs11Uri::new().with_id(*b"ab").to_string(),
        "pkcs11:id=%61%62"
    );
}

#[test]
fn values_escape_exactly_what_their_component_requires() {
    let ascii: String = (0u8..0x80).map(char::from).collect();
    let uri = Pkcs11Uri::new()
        .with_object(ascii.clone())
        .with_pin_source(ascii.clone());
    let text = uri.to_string();
    let path_plain =
        "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~:[]@!$'()*+,=&";
    let query_plain =
        "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~:[]@!$'()*+,=/?|";
    let (path, query) = text
        .strip_prefix("pkcs11:object=")
        .and_then(|t| t.split_once("?pin-source="))
        .unwrap_or_else(|| panic!("unexpected form {text}"));
    let unescaped = |s: &str| -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if c == '%' {
                rest = &rest[3..];
            } else {
                out.push(c);
                rest = &rest[1..];
            }
        }
        out
    };
    let sorted = |s: &str| {
        let mut v: Vec<char> = s.chars().collect();
        v.sort_unstable();
        v
    };
    assert_eq!(sorted(&unescaped(path)), sorted(path_plain));
    assert_eq!(sorted(&unescaped(query)), sorted(query_plain));
    assert!(path.contains("%3B") && path.contains("%2F") && path.contains("%3F"));
    assert!(query.contains("%26") && query.contains("%23") && query.contains("%25"));
    assert_round_trip(&uri);
}

/// The error for `s`, checked to start at `position` and to say each of `words`.
fn assert_refused(s: &str, position: usize, words: &[&str]) {
    let e = refuse(s);
    assert_eq!(e.position(), position, "{s:?}: {e}");
    for w in words {
        assert!(e.message().contains(w), "{s:?}: {e} should say {w:?}");
    }
    assert!(e.to_string().contains(&format!("at byte {position}")));
}

#[test]
fn malformed_uris_are_refused_naming_the_part() {
    assert_refused("", 0, &["pkcs11:"]);
    assert_refused("pkcs12:token=a", 0, &["pkcs11:"]);
    assert_refused("pkcs11", 0, &["pkcs11:"]);
    assert_refused(" pkcs11:token=a", 0, &["pkcs11:"]);
    assert_refused("pkcs11:token=a;token=b", 15, &["'token'", "twice"]);
    assert_refused("pkcs11:id=%01;object=a;id=%02", 23, &["'id'", "twice"]);
    assert_refused("pkcs11:x-a=1;x-a=2", 13, &["'x-a'", "twice"]);
    assert_refused(
        "pkcs11:?pin-source=a&pin-source=b",
        21,
        &["'pin-source'", "twice"],
    );
    assert_refused(
        "pkcs11:?module-path=/a&module-path=/b",
        23,
        &["'module-path'", "twice"],
    );
    assert_refused(
        "pkcs11:?module-name=a&module-name=b",
        22,
        &["'module-name'", "twice"],
    );
    assert_refused("pkcs11:token=%4", 13, &["percent-escape", "'token'"]);
    assert_refused("pkcs11:token=ab%zz", 15, &["percent-escape", "'token'"]);
    assert_refused("pkcs11:object=%", 14, &["percent-escape", "'object'"]);
    assert_refused("pkcs11:token=%ff", 7, &["'token'", "UTF-8"]);
    assert_refused("pkcs11:object=%C3", 7, &["'object'", "UTF-8"]);
    assert_refused("pkcs11:x-v=%80", 7, &["'x-v'", "UTF-8"]);
    assert_refused("pkcs11:token", 7, &["path attribute", "'='"]);
    assert_refused("pkcs11:token=a;object", 15, &["path attribute", "'='"]);
    assert_refused("pkcs11:?pin-source", 8, &["query attribute", "'='"]);
    assert_refused("pkcs11:=x", 7, &["empty name"]);
    assert_refused("pkcs11:?=x", 8, &["empty name"]);
    assert_refused("pkcs11:token=a;;object=b", 15, &["empty path attribute"]);
    assert_refused("pkcs11:token=a;", 15, &["empty path attribute"]);
    assert_refused("pkcs11:;", 7, &["empty path attribute"]);
    assert_refused("pkcs11:?&", 8, &["empty query attribute"]);
    assert_refused("pkcs11:tok*en=a", 7, &["name", "letters, digits"]);
    assert_refused("pkcs11:token=a b", 14, &["a space", "%20", "'token'"]);
    assert_refused("pkcs11:object=a/b", 15, &["'/'", "%2F", "'object'"]);
    assert_refused("pkcs11:token=a?b=c/d#e", 20, &["'#'", "%23", "'b'"]);
    assert_refused("pkcs11:token=\u{e9}", 13, &["'\u{e9}'", "%C3%A9"]);
    assert_refused("pkcs11:token=a\nb", 14, &["U+000A", "%0A"]);
    assert_refused("pkcs11:type=key", 7, &["type", "secret-key"]);
    assert_refused("pkcs11:type=CERT", 7, &["type"]);
    assert_refused("pkcs11:type=%63ert", 7, &["type"]);
    assert_refused("pkcs11:type=cert;type=cert", 17, &["'type'", "twice"]);
    assert_refused("pkcs11:TOKEN=a", 7, &["lowercase", "'token'"]);
    assert_refused("pkcs11:?Pin-Value=a", 8, &["lowercase", "'pin-value'"]);
    assert_refused(
        "pkcs11:pin-source=file:x",
        7,
        &["'pin-source'", "after '?'"],
    );
    assert_refused("pkcs11:?token=a", 8, &["'token'", "before '?'"]);
    assert_refused("pkcs11:?slot-id=1", 8, &["'slot-id'", "before '?'"]);
    assert_refused("pkcs11:slot-id=", 7, &["slot-id"]);
    assert_refused("pkcs11:slot-id=-1", 7, &["slot-id"]);
    assert_refused("pkcs11:slot-id=+1", 7, &["slot-id"]);
    assert_refused("pkcs11:slot-id=18446744073709551616", 7, &["slot-id"]);
    for v in ["", "1.", ".1", "1.256", "256", "a", "1.2.3", "%31", "1,2"] {
        assert_refused(
            &format!("pkcs11:library-version={v}"),
            7,
            &["library-version"],
        );
    }
    assert_refused("pkcs11:?module-name=", 8, &["module-name", "empty"]);
    assert_refused("pkcs11:?module-path=", 8, &["module-path", "empty"]);
}

#[test]
fn numbers_take_leading_zeros_and_their_limits() {
    assert_eq!(
        parse("pkcs11:slot-id=18446744073709551615").slot_id(),
        Some(u64::MAX)
    );
    assert_eq!(parse("pkcs11:slot-id=007").slot_id(), Some(7));
    assert_eq!(
        parse("pkcs11:library-version=255.255").library_version(),
        Some((255, 255))
    );
    assert_eq!(
        parse("pkcs11:library-version=1.01").library_version(),
        Some((1, 1))
    );
    assert_eq!(
        parse("pkcs11:library-version=2").to_string(),
        "pkcs11:library-version=2.0"
    );
}

#[test]
fn pins_are_never_echoed() {
    // Both PIN attributes: refused (RFC 7512 section 2.3), in either order.
    for s in [
        "pkcs11:?pin-value=s3cr3t&pin-source=file:/x",
        "pkcs11:?pin-source=file:/x&pin-value=s3cr3t",
    ] {
        let e = refuse(s);
        assert!(e.message().contains("pin-source") && e.message().contains("pin-value"));
        assert!(!e.to_string().contains("s3cr3t"));
    }
    let e = refuse("pkcs11:?pin-value=s3cr3t&pin-value=s3cr3t");
    assert!(e.message().contains("twice") && !e.to_string().contains("s3cr3t"));
    // A bad character inside a PIN is located but not shown.
    let e = refuse("pkcs11:?pin-value=ab\u{e9}cd");
    assert_eq!(e.position(), 20);
    assert!(!e.message().contains('\u{e9}') && !e.message().contains("%C3"));
    // A PIN typed where an attribute belongs is not quoted either.
    let e = refuse("pkcs11:token=a;s3cr3t");
    assert!(!e.to_string().contains("s3cr3t"));
    // Debug redacts the PIN; Display writes it, as the URI contains it.
    let uri = parse("pkcs11:token=a?pin-value=s3cr3t&x-a=b");
    let debug = format!("{uri:?}");
    assert!(!debug.contains("s3cr3t") && debug.contains("pin-value=<redacted>"));
    assert!(debug.contains("token=a") && debug.contains("x-a=b"));
    assert!(!format!("{:?}", parse("pkcs11:?pin-value=s3cr3t")).contains("s3cr3t"));
    assert!(uri.to_string().contains("pin-value=s3cr3t"));
    // Setting a pin-source drops a pin-value, so the result stays a valid URI.
    let switched = uri.with_pin_source("file:/pin");
    assert_eq!(switched.pin_value(), None);
    assert_round_trip(&switched);
}

#[test]
fn builders_refuse_bad_vendor_names() {
    for name in [
        "",
        "token",
        "TOKEN",
        "pin-value",
        "Module-Path",
        "x a",
        "x;y",
        "é",
    ] {
        assert!(
            Pkcs11Uri::new().with_vendor_path(name, "v").is_err(),
            "{name:?}"
        );
        assert!(
            Pkcs11Uri::new().with_vendor_query(name, "v").is_err(),
            "{name:?}"
        );
    }
    let twice = Pkcs11Uri::new()
        .with_vendor_path("x-a", "1")
        .and_then(|u| u.with_vendor_path("x-a", "2"));
    assert!(twice.is_err_and(|e| e.message().contains("x-a")));
    // Empty module names are not representable, so they clear the attribute.
    let uri = Pkcs11Uri::new()
        .with_module_name("m")
        .with_module_path("/p")
        .with_module_name("")
        .with_module_path("");
    assert_eq!(uri, Pkcs11Uri::new());
    assert_eq!(
        parse("pkcs11:object=o;id=%01?pin-value=1&module-name=m&x-z=1").without_query(),
        parse("pkcs11:object=o;id=%01")
    );
}

#[test]
fn object_types_and_classes() {
    for t in ObjectType::ALL {
        assert_eq!(t.as_str().parse::<ObjectType>(), Ok(t));
        assert_eq!(ObjectType::from_class(t.class()), Some(t));
        assert_eq!(t.to_string(), t.as_str());
    }
    // CKO_DATA .. CKO_SECRET_KEY, as PKCS#11 numbers them.
    assert_eq!(ObjectType::Data.class(), 0);
    assert_eq!(ObjectType::Cert.class(), 1);
    assert_eq!(ObjectType::Public.class(), 2);
    assert_eq!(ObjectType::Private.class(), 3);
    assert_eq!(ObjectType::SecretKey.class(), 4);
    assert_eq!(ObjectType::from_class(5), None);
    assert!("Cert".parse::<ObjectType>().is_err());
}

const TOKEN: TokenFields<'static> = TokenFields {
    label: "dev token                       ",
    manufacturer: "Keyward                         ",
    model: "soft            ",
    serial: "0123456789abcdef",
};

#[test]
fn token_matching() {
    assert!(Pkcs11Uri::new().matches_token(&TOKEN));
    assert!(parse("pkcs11:token=dev%20token").matches_token(&TOKEN));
    assert!(
        parse("pkcs11:token=dev%20token;manufacturer=Keyward;model=soft;serial=0123456789abcdef")
            .matches_token(&TOKEN)
    );
    // Padding written into the URI is ignored too.
    assert!(parse("pkcs11:token=dev%20token%20%20").matches_token(&TOKEN));
    // Only trailing blanks are padding, and the comparison is exact otherwise.
    assert!(!parse("pkcs11:token=dev").matches_token(&TOKEN));
    assert!(!parse("pkcs11:token=%20dev%20token").matches_token(&TOKEN));
    assert!(!parse("pkcs11:token=Dev%20token").matches_token(&TOKEN));
    assert!(!parse("pkcs11:token=dev%20token;serial=0123").matches_token(&TOKEN));
    assert!(!parse("pkcs11:model=hard").matches_token(&TOKEN));
    // An empty value matches only an empty (all blank) field.
    assert!(!parse("pkcs11:serial=").matches_token(&TOKEN));
    assert!(parse("pkcs11:serial=").matches_token(&TokenFields {
        serial: "                ",
        ..TOKEN
    }));
    // Object and query attributes do not take part in token matching.
    assert!(
        parse("pkcs11:token=dev%20token;object=x;id=%01?pin-value=1&x-q=1").matches_token(&TOKEN)
    );
    // An unrecognised path attribute matches nothing (RFC 7512).
    assert!(!parse("pkcs11:token=dev%20token;x-vendor=1").matches_token(&TOKEN));
}

#[test]
fn slot_and_library_matching() {
    let slot = SlotFields {
        description: "Keyward slot 0                                                  ",
        manufacturer: "Keyward                         ",
        id: 7,
    };
    assert!(Pkcs11Uri::new().matches_slot(&slot));
    assert!(parse("pkcs11:slot-id=7;slot-description=Keyward%20slot%200").matches_slot(&slot));
    assert!(parse("pkcs11:slot-manufacturer=Keyward").matches_slot(&slot));
    assert!(!parse("pkcs11:slot-id=8").matches_slot(&slot));
    assert!(!parse("pkcs11:slot-description=Keyward").matches_slot(&slot));
    assert!(!parse("pkcs11:slot-id=7;x-a=b").matches_slot(&slot));

    let lib = LibraryFields {
        manufacturer: "Keyward project                 ",
        description: "Keyward PKCS#11                 ",
        version: (0, 1),
    };
    assert!(Pkcs11Uri::new().matches_library(&lib));
    assert!(
        parse("pkcs11:library-manufacturer=Keyward%20project;library-description=Keyward%20PKCS%2311;library-version=0.1")
            .matches_library(&lib)
    );
    assert!(!parse("pkcs11:library-version=0").matches_library(&lib));
    assert!(!parse("pkcs11:library-version=1.1").matches_library(&lib));
    assert!(!parse("pkcs11:library-manufacturer=Other").matches_library(&lib));
}

#[test]
fn object_matching() {
    let id = [0x00, 0xff, 0x10];
    let key = ObjectFields {
        label: Some("device key"),
        id: Some(&id),
        object_type: Some(ObjectType::Private),
    };
    assert!(Pkcs11Uri::new().matches_object(&key));
    assert!(parse("pkcs11:object=device%20key;type=private;id=%00%FF%10").matches_object(&key));
    assert!(parse("pkcs11:id=%00%ff%10").matches_object(&key));
    // id compares bytes exactly: no prefix, no extra byte, no other case of letters.
    assert!(!parse("pkcs11:id=%00%FF").matches_object(&key));
    assert!(!parse("pkcs11:id=%00%FF%10%00").matches_object(&key));
    assert!(!parse("pkcs11:id=").matches_object(&key));
    assert!(!parse("pkcs11:type=public").matches_object(&key));
    // Object labels are not padded: a trailing blank is part of the label.
    assert!(!parse("pkcs11:object=device%20key%20").matches_object(&key));
    assert!(!parse("pkcs11:object=device").matches_object(&key));
    // An object without the attribute the URI names does not match it.
    let bare = ObjectFields {
        label: None,
        id: None,
        object_type: None,
    };
    assert!(Pkcs11Uri::new().matches_object(&bare));
    assert!(!parse("pkcs11:object=x").matches_object(&bare));
    assert!(!parse("pkcs11:id=").matches_object(&bare));
    assert!(!parse("pkcs11:type=cert").matches_object(&bare));
    // An empty id matches an empty CKA_ID.
    assert!(parse("pkcs11:id=").matches_object(&ObjectFields {
        id: Some(&[]),
        ..bare
    }));
    assert!(!parse("pkcs11:id=%00%FF%10;vendor-aaa=1").matches_object(&key));
}

/// xorshift64*: a fixed, dependency-free sequence, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Pieces of URIs, valid and not, that random strings are made of.
const PIECES: &[&str] = &[
    "token",
    "manufacturer",
    "serial",
    "model",
    "library-manufacturer",
    "library-description",
    "library-version",
    "object",
    "type",
    "id",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
    "pin-source",
    "pin-value",
    "module-name",
    "module-path",
    "x-v",
    "vendor",
    "TOKEN",
    "=",
    "=",
    "=",
    ";",
    ";",
    "?",
    "&",
    "%",
    "%4",
    "%41",
    "%e2%82%ac",
    "%C3",
    "%ff",
    "%00",
    "%3B",
    "cert",
    "secret-key",
    "private",
    "1",
    "255",
    "256",
    "1.2",
    ".",
    "0",
    "18446744073709551616",
    "a",
    "Z",
    " ",
    "/",
    "|",
    "\u{e9}",
    "#",
    ":",
    "@",
    "'",
    "*",
    "file:/x",
    "\u{1f511}",
    "\0",
    "-",
    "_",
    "~",
    "[",
    "]",
];

/// Value pieces that the path grammar accepts anywhere.
const VALID_VALUE_PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "%41",
    "%e2%82%ac",
    "%00",
    "%3B",
    "%25",
    "cert",
    "1.2",
    "-",
    "_",
    "~",
    ":",
    "@",
    "'",
    "*",
    "[",
    "]",
    "&",
    "=",
    "!",
    "$",
    "(",
    ")",
    "+",
    ",",
];

fn random_text(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.below(10) != 0 {
        s.push_str(rng.pick(&["pkcs11:", "PKCS11:", "pkcs11:"]));
    }
    for _ in 0..rng.below(16) {
        s.push_str(rng.pick(PIECES));
    }
    s
}

/// A mostly well-formed URI text: name=value pairs from the pieces above.
fn random_uri_text(rng: &mut Rng) -> String {
    let mut s = String::from("pkcs11:");
    for i in 0..rng.below(6) {
        if i > 0 {
            s.push(';');
        }
        s.push_str(rng.pick(&PIECES[..20]));
        s.push('=');
        for _ in 0..rng.below(4) {
            if rng.below(3) == 0 {
                s.push_str(rng.pick(&PIECES[20..]));
            } else {
                s.push_str(rng.pick(VALID_VALUE_PIECES));
            }
        }
    }
    if rng.below(2) == 0 {
        s.push('?');
        for i in 0..rng.below(4) {
            if i > 0 {
                s.push('&');
            }
            s.push_str(rng.pick(&PIECES[13..20]));
            s.push('=');
            s.push_str(rng.pick(&["a", "file:/p", "%41", "|/bin/x", "?/", "x%20y"]));
        }
    }
    s
}

fn random_string(rng: &mut Rng) -> String {
    let chars = [
        'a',
        'Z',
        '0',
        ' ',
        ';',
        '?',
        '&',
        '=',
        '%',
        '/',
        '#',
        '|',
        '\0',
        '\u{7f}',
        '\u{e9}',
        '\u{20ac}',
        '\u{1f511}',
        '\u{10ffff}',
        '~',
        '\'',
    ];
    (0..rng.below(8)).map(|_| rng.pick(&chars)).collect()
}

#[test]
fn pseudo_random_text_never_panics_and_round_trips() {
    let mut rng = Rng(0x6b65_7977_6172_6421);
    let mut parsed = 0;
    for i in 0..6000 {
        let text = if i % 2 == 0 {
            random_text(&mut rng)
        } else {
            random_uri_text(&mut rng)
        };
        match text.parse::<Pkcs11Uri>() {
            Ok(uri) => {
                parsed += 1;
                assert_round_trip(&uri);
            }
            Err(e) => {
                assert!(e.position() <= text.len(), "{text:?}: {e}");
                assert!(!e.message().is_empty());
            }
        }
    }
    // Enough inputs get through for the round trip to be exercised.
    assert!(parsed > 900, "only {parsed} of 6000 parsed");
}

#[test]
fn pseudo_random_built_uris_round_trip() {
    let mut rng = Rng(0x5552_4921_0000_0001);
    for _ in 0..3000 {
        let mut uri = Pkcs11Uri::new();
        let maybe = |rng: &mut Rng| rng.below(3) == 0;
        if maybe(&mut rng) {
            uri = uri.with_token(random_string(&mut rng));
        }
        if maybe(&mut rng) {
            uri = uri.with_serial(random_string(&mut rng));
        }
        if maybe(&mut rng) {
            uri = uri.with_object(random_string(&mut rng));
        }
        if maybe(&mut rng) {
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next().to_le_bytes()[0]).collect();
            uri = uri.with_id(bytes);
        }
        if maybe(&mut rng) {
            uri = uri.with_object_type(rng.pick(&ObjectType::ALL));
        }
        if maybe(&mut rng) {
            uri = uri.with_slot_id(rng.next());
        }
        if maybe(&mut rng) {
            let v = rng.next().to_le_bytes();
            uri = uri.with_library_version((v[0], v[1]));
        }
        if maybe(&mut rng) {
            uri = uri.with_pin_value(random_string(&mut rng));
        }
        if maybe(&mut rng) {
            uri = uri.with_pin_source(random_string(&mut rng));
        }
        if maybe(&mut rng) {
            uri = uri.with_module_path(random_string(&mut rng));
        }
        if maybe(&mut rng) {
            uri = match uri.with_vendor_query("x-q", random_string(&mut rng)) {
                Ok(u) => u,
                Err(e) => panic!("{e}"),
            };
        }
        assert_round_trip(&uri);
    }
}
