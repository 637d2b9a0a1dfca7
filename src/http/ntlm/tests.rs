use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|c| (c as char).to_digit(16).map_or(0, |d| d as u8))
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// RC4, here only to check [MS-NLMP]'s key-exchange vector (the product does no key exchange).
fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|byte| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[usize::from(i)]);
            s.swap(usize::from(i), usize::from(j));
            byte ^ s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))]
        })
        .collect()
}

fn check<T: PartialEq + std::fmt::Debug>(name: &str, got: T, want: T) {
    assert_eq!(got, want, "{name}");
}

// [MS-NLMP] 4.2.1 and 4.2.4: the published inputs of the NTLMv2 example.
const SPEC_CHALLENGE: &str = "4e544c4d53535000020000000c000c003800000033828ae2\
    0123456789abcdef00000000000000002400240044000000060070170000000f\
    53006500720076006500720002000c0044006f006d00610069006e0001000c00\
    530065007200760065007200 00000000";

// [MS-NLMP] 4.2.4.3: the published AUTHENTICATE message.
const SPEC_AUTHENTICATE: &str = "4e544c4d53535000030000001800180\
    06c00000054005400840000000c000c00480000000800080054000000100010005c00000010001000\
    d8000000358288e205012 80a0000000f44006f006d00610069006e00550073006500720043004f00\
    4d0050005500540045005200 86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa\
    68cd0ab851e51c96aabc927bebef6a1c 0101000000000000 0000000000000000 aaaaaaaaaaaaaaaa\
    00000000 02000c0044006f006d00610069006e00 01000c00530065007200760065007200 00000000\
    00000000 c5dad2544fc9799094ce1ce90bc9d03e";

fn spec_identity() -> Identity {
    Identity::parse("Domain\\User")
}

fn spec_responses() -> Responses {
    let challenge = parse_challenge(&hex(SPEC_CHALLENGE)).expect("spec challenge parses");
    let key = ntowfv2(&nt_hash("Password"), &spec_identity());
    compute_responses(
        &key,
        &challenge.server_challenge,
        &[0xaa; 8],
        0,
        &challenge.target_info,
        false,
    )
}

#[test]
fn ms_nlmp_4_2_4_ntlmv2_vectors() {
    let key = ntowfv2(&nt_hash("Password"), &spec_identity());
    check(
        "4.2.2.1.2 NTOWFv1",
        nt_hash("Password").to_vec(),
        hex("a4f49c406510bdcab6824ee7c30fd852"),
    );
    check(
        "4.2.4.1.1 NTOWFv2",
        key.to_vec(),
        hex("0c868a403bfd7a93a3001ef22ef02e3f"),
    );
    let r = spec_responses();
    check(
        "4.2.4.1.2 session base key",
        r.session_base_key.to_vec(),
        hex("8de40ccadbc14a82f15cb0ad0de95ca3"),
    );
    check(
        "4.2.4.2.1 LMv2 response",
        r.lm_response,
        hex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"),
    );
    check(
        "4.2.4.2.2 NTProofStr",
        r.nt_response[..16].to_vec(),
        hex("68cd0ab851e51c96aabc927bebef6a1c"),
    );
    check(
        "4.2.4.2.3 encrypted session key",
        rc4(&r.session_base_key, &[0x55; 16]),
        hex("c5dad2544fc9799094ce1ce90bc9d03e"),
    );
}

#[test]
fn ms_nlmp_4_2_4_3_messages() {
    let challenge = parse_challenge(&hex(SPEC_CHALLENGE)).expect("spec challenge parses");
    check("flags", challenge.flags, 0xe28a_8233);
    check(
        "server challenge",
        challenge.server_challenge.to_vec(),
        hex("0123456789abcdef"),
    );
    check("target info", challenge.target_info.len(), 36);
    check("timestamp", challenge.timestamp, None);

    let r = spec_responses();
    let layout = Layout {
        flags: 0xe288_8235,
        version: [0x05, 0x01, 0x28, 0x0a, 0, 0, 0, 0x0f],
        with_mic: false,
        workstation: "COMPUTER",
    };
    let encrypted = rc4(&r.session_base_key, &[0x55; 16]);
    let msg = encode_authenticate(&layout, &spec_identity(), &r, &encrypted).expect("encodes");
    check("AUTHENTICATE", msg, hex(SPEC_AUTHENTICATE));
}

#[test]
fn channel_bindings_match_the_published_example() {
    // Microsoft's Open Specifications blog (2013-03-26) "NTLM and Channel Binding Hash".
    let end_point = hex("ea05fefecc6b0bd571dbbc5baa3ed45386d0446835f7b74c85621b9983475f95");
    check(
        "MD5 of gss_channel_bindings_struct",
        channel_bindings_hash(&end_point).to_vec(),
        hex("6586e99d81c2fc984e47172fd4dd0310"),
    );
}

#[test]
fn rc4_known_answer() {
    check(
        "RC4(Key, Plaintext)",
        rc4(b"Key", b"Plaintext"),
        hex("bbf316e8d940af0ad3"),
    );
    check(
        "RC4(Wiki, pedia)",
        rc4(b"Wiki", b"pedia"),
        hex("1021bf0420"),
    );
}

#[test]
fn usernames() {
    let cases = [
        ("EXAMPLE\\svc-starface", "EXAMPLE", "svc-starface"),
        ("svc-starface@example.com", "", "svc-starface@example.com"),
        ("plain", "", "plain"),
    ];
    for (input, domain, user) in cases {
        check(
            input,
            Identity::parse(input),
            Identity {
                domain: domain.into(),
                user: user.into(),
            },
        );
    }
    check("ß stays", upcase("straße"), "STRAßE".to_string());
}

#[test]
fn negotiate_message() {
    let m = negotiate();
    check("length", m.len(), 32);
    check(
        "signature and type",
        m[..12].to_vec(),
        hex("4e544c4d5353500001000000"),
    );
    check(
        "flags",
        u32::from_le_bytes([m[12], m[13], m[14], m[15]]),
        CLIENT_FLAGS,
    );
}

/// A CHALLENGE with the given flags and target information (and the spec's challenge).
fn challenge_with(flags: u32, info: &[u8]) -> Vec<u8> {
    let mut m = hex(SPEC_CHALLENGE)[..48].to_vec();
    m[20..24].copy_from_slice(&flags.to_le_bytes());
    m[12..20].copy_from_slice(&[0, 0, 0, 0, 48, 0, 0, 0]);
    m[40..42].copy_from_slice(&(info.len() as u16).to_le_bytes());
    m[42..44].copy_from_slice(&(info.len() as u16).to_le_bytes());
    m[44..48].copy_from_slice(&48u32.to_le_bytes());
    m.extend_from_slice(info);
    m
}

const V2_FLAGS: u32 = 0xe28a_8235;

#[test]
fn malformed_challenges_are_refused() {
    let spec = hex(SPEC_CHALLENGE);
    let mut bad_type = spec.clone();
    bad_type[8] = 3;
    let mut name_out = spec.clone();
    name_out[16] = 0xf0;
    let mut info_out = spec.clone();
    info_out[40] = 0x40;
    let mut info_offset_huge = spec.clone();
    info_offset_huge[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
    let huge = {
        let mut m = spec.clone();
        m.resize(MAX_CHALLENGE + 1, 0);
        m
    };
    let ts = hex("0700080011223344556677880000 0000");
    let cases: Vec<(&str, Vec<u8>, NtlmError)> = vec![
        ("empty", vec![], NtlmError::Truncated("signature")),
        (
            "not NTLMSSP",
            b"NTLMSSX\0\x02\0\0\0".to_vec(),
            NtlmError::NotNtlmssp,
        ),
        ("type 3", bad_type, NtlmError::WrongMessageType(3)),
        (
            "no type",
            spec[..10].to_vec(),
            NtlmError::Truncated("message type"),
        ),
        (
            "no flags",
            spec[..22].to_vec(),
            NtlmError::Truncated("flags"),
        ),
        (
            "no challenge",
            spec[..30].to_vec(),
            NtlmError::Truncated("server challenge"),
        ),
        (
            "v1 header only",
            challenge_with(V2_FLAGS & !NEGOTIATE_TARGET_INFO, &[])[..32].to_vec(),
            NtlmError::NtlmV1Only,
        ),
        (
            "target name outside",
            name_out,
            NtlmError::OutOfBounds("target name"),
        ),
        (
            "target info outside",
            info_out,
            NtlmError::OutOfBounds("target info"),
        ),
        (
            "target info offset overflow",
            info_offset_huge,
            NtlmError::OutOfBounds("target info"),
        ),
        ("huge", huge, NtlmError::TooLarge(MAX_CHALLENGE + 1)),
        (
            "OEM only",
            challenge_with(V2_FLAGS & !NEGOTIATE_UNICODE, &ts),
            NtlmError::NoUnicode,
        ),
        (
            "NTLMv1 only (no target info flag)",
            challenge_with(V2_FLAGS & !NEGOTIATE_TARGET_INFO, &ts),
            NtlmError::NtlmV1Only,
        ),
        (
            "empty target info",
            challenge_with(V2_FLAGS, &[]),
            NtlmError::NtlmV1Only,
        ),
        (
            "no end marker",
            challenge_with(V2_FLAGS, &hex("01000200 4100")),
            NtlmError::BadTargetInfo("no end marker"),
        ),
        (
            "value past the end",
            challenge_with(V2_FLAGS, &hex("0100ff00 4100")),
            NtlmError::BadTargetInfo("a value runs past the end"),
        ),
        (
            "end marker with a value",
            challenge_with(V2_FLAGS, &hex("00000200 0000")),
            NtlmError::BadTargetInfo("the end marker has a value"),
        ),
        (
            "bytes after the end",
            challenge_with(V2_FLAGS, &hex("00000000 01")),
            NtlmError::BadTargetInfo("bytes after the end marker"),
        ),
        (
            "short timestamp",
            challenge_with(V2_FLAGS, &hex("07000400 00000000 00000000")),
            NtlmError::BadTargetInfo("the timestamp is not 8 bytes"),
        ),
        (
            "two timestamps",
            challenge_with(
                V2_FLAGS,
                &hex("0700080001000000000000000700080001000000000000000000 0000"),
            ),
            NtlmError::BadTargetInfo("two timestamps"),
        ),
        (
            "flags not 4 bytes",
            challenge_with(V2_FLAGS, &hex("06000200 0000 00000000")),
            NtlmError::BadTargetInfo("the flags are not 4 bytes"),
        ),
    ];
    for (name, msg, want) in cases {
        check(name, parse_challenge(&msg), Err(want));
    }
}

fn av_pairs(info: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= info.len() {
        let id = u16::from_le_bytes([info[at], info[at + 1]]);
        let len = usize::from(u16::from_le_bytes([info[at + 2], info[at + 3]]));
        out.push((id, info[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    out
}

fn field(msg: &[u8], at: usize) -> &[u8] {
    let len = usize::from(u16::from_le_bytes([msg[at], msg[at + 1]]));
    let off = u32::from_le_bytes([msg[at + 4], msg[at + 5], msg[at + 6], msg[at + 7]]) as usize;
    &msg[off..off + len]
}

#[test]
fn authenticate_carries_mic_channel_binding_and_the_server_timestamp() {
    let info = hex("02000c0044006f006d00610069006e00 0700080001020304050607080000 0000");
    let challenge = challenge_with(V2_FLAGS, &info);
    let negotiate_msg = negotiate();
    let input = ClientInput {
        client_challenge: [0x11; 8],
        now_filetime: 0x0102_0304_0506_0708 + 1,
        channel_bindings: Some([0x33; 16]),
    };
    let identity = Identity::parse("svc@example.com");
    let hash = nt_hash("secret");
    let msg = authenticate(&identity, &hash, &negotiate_msg, &challenge, &input).expect("builds");

    check(
        "domain empty for a UPN",
        field(&msg, 28).to_vec(),
        Vec::new(),
    );
    check(
        "user is the whole UPN",
        field(&msg, 36).to_vec(),
        utf16le("svc@example.com"),
    );
    check(
        "LM response zero with a server timestamp",
        field(&msg, 12).to_vec(),
        vec![0; 24],
    );
    let nt = field(&msg, 20).to_vec();
    check(
        "server timestamp used",
        nt[24..32].to_vec(),
        hex("0102030405060708"),
    );
    let pairs = av_pairs(&nt[44..nt.len() - 4]);
    check(
        "MIC bit",
        pairs.iter().find(|p| p.0 == 6).map(|p| p.1.clone()),
        Some(hex("02000000")),
    );
    check(
        "channel bindings",
        pairs.iter().find(|p| p.0 == 10).map(|p| p.1.clone()),
        Some(vec![0x33; 16]),
    );
    check("ends in EOL", pairs.last().cloned(), Some((0, vec![])));

    let flags = u32::from_le_bytes([msg[60], msg[61], msg[62], msg[63]]);
    check("only flags both sides want", flags & !CLIENT_FLAGS, 0);
    check("no key exchange (0x40000000)", flags & 0x4000_0000, 0);
    check(
        "no encrypted session key",
        field(&msg, 52).to_vec(),
        Vec::new(),
    );

    // The MIC, recomputed independently of `authenticate`: HMAC-MD5 under the exported session
    // key (without key exchange the session base key) over all three messages with the MIC
    // zeroed.
    let key = ntowfv2(&hash, &identity);
    let proof: [u8; 16] = nt[..16].try_into().expect("16 bytes");
    let exported = hmac_md5(&key, &[&proof]);
    let mut zeroed = msg.clone();
    zeroed[72..88].fill(0);
    let mic = hmac_md5(&exported, &[&negotiate_msg, &challenge, &zeroed]);
    check("MIC", msg[72..88].to_vec(), mic.to_vec());
    check(
        "NTProofStr",
        proof,
        hmac_md5(&key, &[&challenge[24..32], &nt[16..]]),
    );
}

#[test]
fn without_a_server_timestamp_the_client_time_and_lmv2_are_used() {
    let challenge = hex(SPEC_CHALLENGE);
    let input = ClientInput {
        client_challenge: [0xaa; 8],
        now_filetime: 0x01d2_d400_fdc8_0b80,
        channel_bindings: None,
    };
    let msg = authenticate(
        &spec_identity(),
        &nt_hash("Password"),
        &negotiate(),
        &challenge,
        &input,
    )
    .expect("builds");
    let nt = field(&msg, 20).to_vec();
    check("client time", nt[24..32].to_vec(), hex("800bc8fd00d4d201"));
    check(
        "LMv2",
        field(&msg, 12).to_vec(),
        spec_responses().lm_response,
    );
    let pairs = av_pairs(&nt[44..nt.len() - 4]);
    check(
        "zero channel bindings over HTTP",
        pairs.iter().find(|p| p.0 == 10).map(|p| p.1.clone()),
        Some(vec![0; 16]),
    );
}

#[test]
fn tls_server_end_point_follows_the_signature_hash() {
    for (alg, digest) in [
        (&rcgen::PKCS_ECDSA_P256_SHA256, &ring::digest::SHA256),
        (&rcgen::PKCS_ECDSA_P384_SHA384, &ring::digest::SHA384),
    ] {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["mail.example.com".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der = cert.der().to_vec();
        check(
            &format!("{alg:?}"),
            tls_server_end_point(&der),
            Ok(ring::digest::digest(digest, &der).as_ref().to_vec()),
        );
        check(
            "truncated",
            tls_server_end_point(&der[..der.len() - 1]),
            Err(NtlmError::BadCertificate("not a DER certificate")),
        );
    }
    check(
        "empty",
        tls_server_end_point(&[]),
        Err(NtlmError::BadCertificate("not a DER certificate")),
    );
}

#[test]
fn client_challenges_are_drawn_fresh() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let a = client_challenge(|| deadline).expect("random");
    let b = client_challenge(|| deadline).expect("random");
    check("two draws differ", a == b, false);
}
