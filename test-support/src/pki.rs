//! A certificate authority and the serving certificates it signs, made with rcgen.

/// The names a loopback server's certificate carries.
pub const LOOPBACK: [&str; 2] = ["localhost", "127.0.0.1"];

/// A self-signed certificate authority.
pub struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    /// The CA's certificate (PEM), for a client's trust or a `caBundle`.
    pub pem: String,
}

/// A serving certificate and its key.
pub struct Serving {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The certificate (DER), as a TLS handshake presents it.
    pub cert_der: Vec<u8>,
    /// The private key (PKCS#8 DER).
    pub key_der: Vec<u8>,
}

impl Ca {
    /// A new CA whose certificate has the common name `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap_or_else(|e| panic!("CA parameters: {e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("a CA key: {e}"));
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key)
            .unwrap_or_else(|e| panic!("the CA certificate: {e}"));
        Ca {
            pem: issuer.pem(),
            issuer,
        }
    }

    /// A serving certificate for `names` (IP addresses become IP SANs), signed by this CA.
    pub fn serving(&self, names: &[&str]) -> Serving {
        let names = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let params = rcgen::CertificateParams::new(names)
            .unwrap_or_else(|e| panic!("serving certificate parameters: {e}"));
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("a serving key: {e}"));
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("a serving certificate: {e}"));
        Serving {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}
