//! Channel binding for NTLM over TLS: the `tls-server-end-point` value of RFC 5929 section 4.1
//! (a hash of the server's certificate) and the MD5 of the gss_channel_bindings_struct that
//! goes into MsvAvChannelBindings, which Extended Protection checks.

use super::NtlmError;

const SHA256: &ring::digest::Algorithm = &ring::digest::SHA256;
const SHA384: &ring::digest::Algorithm = &ring::digest::SHA384;
const SHA512: &ring::digest::Algorithm = &ring::digest::SHA512;

const RSA_PREFIX: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const ECDSA_SHA2_PREFIX: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
const NIST_HASH_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
const SHA1_OID: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

/// One DER element: its tag, its contents, and what follows it.
fn element(der: &[u8]) -> Result<(u8, &[u8], &[u8]), NtlmError> {
    let bad = NtlmError::BadCertificate("not a DER certificate");
    let (&tag, rest) = der.split_first().ok_or(bad.clone())?;
    let (&first, rest) = rest.split_first().ok_or(bad.clone())?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad);
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The hash RFC 5929 section 4.1 names for a certificate's signature algorithm: the one the
/// signature uses, except that MD5 and SHA-1 become SHA-256.
fn end_point_hash(algorithm: &[u8]) -> Result<&'static ring::digest::Algorithm, NtlmError> {
    let (tag, oid, params) = element(algorithm)?;
    if tag != 0x06 {
        return Err(NtlmError::BadCertificate("no signature algorithm"));
    }
    let by_sha2_suffix = |last: u8| match last {
        0x01 | 0x02 => Some(SHA256),
        0x03 => Some(SHA384),
        0x04 => Some(SHA512),
        _ => None,
    };
    let unknown = NtlmError::BadCertificate("a signature algorithm without a defined hash");
    if let Some(&last) = oid.strip_prefix(RSA_PREFIX).and_then(|s| s.first()) {
        return match last {
            0x04 | 0x05 | 0x0b => Ok(SHA256),
            0x0c => Ok(SHA384),
            0x0d => Ok(SHA512),
            0x0a => pss_hash(params),
            _ => Err(unknown),
        };
    }
    if oid == ECDSA_SHA1 {
        return Ok(SHA256);
    }
    if let Some(&[last]) = oid.strip_prefix(ECDSA_SHA2_PREFIX) {
        return by_sha2_suffix(last).filter(|_| last != 0x01).ok_or(unknown);
    }
    Err(unknown)
}

/// RSASSA-PSS names its hash in the parameters (`[0] hashAlgorithm`, SHA-1 when absent).
fn pss_hash(params: &[u8]) -> Result<&'static ring::digest::Algorithm, NtlmError> {
    let (_, mut fields, _) = element(params)?;
    while !fields.is_empty() {
        let (tag, body, rest) = element(fields)?;
        if tag == 0xa0 {
            let (_, algorithm, _) = element(body)?;
            let (_, oid, _) = element(algorithm)?;
            if oid == SHA1_OID {
                return Ok(SHA256);
            }
            return match oid.strip_prefix(NIST_HASH_PREFIX) {
                Some([0x01]) => Ok(SHA256),
                Some([0x02]) => Ok(SHA384),
                Some([0x03]) => Ok(SHA512),
                _ => Err(NtlmError::BadCertificate("an unknown RSASSA-PSS hash")),
            };
        }
        fields = rest;
    }
    Ok(SHA256)
}

/// The `tls-server-end-point` channel binding data: the hash of the server's certificate (DER),
/// by the rule of RFC 5929 section 4.1.
pub fn tls_server_end_point(certificate: &[u8]) -> Result<Vec<u8>, NtlmError> {
    let (tag, body, _) = element(certificate)?;
    let (_, _tbs, rest) = element(body)?;
    let (algorithm_tag, algorithm, _) = element(rest)?;
    if tag != 0x30 || algorithm_tag != 0x30 {
        return Err(NtlmError::BadCertificate("not a DER certificate"));
    }
    let hash = end_point_hash(algorithm)?;
    Ok(ring::digest::digest(hash, certificate).as_ref().to_vec())
}

/// MD5 of the gss_channel_bindings_struct with no addresses and the application data
/// `"tls-server-end-point:" + hash`, the value MsvAvChannelBindings carries.
pub fn channel_bindings_hash(end_point: &[u8]) -> [u8; 16] {
    use md5::Digest;
    const PREFIX: &[u8] = b"tls-server-end-point:";
    let len = (PREFIX.len() + end_point.len()) as u32;
    let mut md5 = md5::Md5::new();
    md5.update([0u8; 16]);
    md5.update(len.to_le_bytes());
    md5.update(PREFIX);
    md5.update(end_point);
    md5.finalize().into()
}
