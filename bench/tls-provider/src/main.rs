//! ring against aws-lc-rs: full TLS 1.3 handshakes between a client and a server in memory
//! (the server side timed apart), then 200-byte and 16 kB records encrypted by the server.

use std::sync::Arc;
use std::time::Instant;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn pair(p: Arc<CryptoProvider>, cert: &CertificateDer<'static>, key: &PrivateKeyDer<'static>) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let s = rustls::ServerConfig::builder_with_provider(p.clone()).with_safe_default_protocol_versions().unwrap()
        .with_no_client_auth().with_single_cert(vec![cert.clone()], key.clone_key()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let c = rustls::ClientConfig::builder_with_provider(p).with_safe_default_protocol_versions().unwrap()
        .with_root_certificates(roots).with_no_client_auth();
    (Arc::new(s), Arc::new(c))
}


fn pump(c: &mut rustls::ClientConnection, s: &mut rustls::ServerConnection, server_ns: &mut u128) {
    let mut buf = Vec::new();
    loop {
        let mut moved = false;
        buf.clear();
        while c.wants_write() { c.write_tls(&mut buf).unwrap(); }
        if !buf.is_empty() { moved = true; let t = Instant::now(); let mut r = &buf[..]; while !r.is_empty() { s.read_tls(&mut r).unwrap(); s.process_new_packets().unwrap(); } *server_ns += t.elapsed().as_nanos(); }
        buf.clear();
        let t = Instant::now();
        while s.wants_write() { s.write_tls(&mut buf).unwrap(); }
        *server_ns += t.elapsed().as_nanos();
        if !buf.is_empty() { moved = true; let mut r = &buf[..]; while !r.is_empty() { c.read_tls(&mut r).unwrap(); c.process_new_packets().unwrap(); } }
        if !moved { break; }
    }
}

fn main() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    for (name, p) in [("ring", rustls::crypto::ring::default_provider()), ("aws-lc-rs", rustls::crypto::aws_lc_rs::default_provider())] {
        let (sc, cc) = pair(Arc::new(p), &cert, &key);
        let n = 2000;
        let mut server_ns = 0u128;
        let t = Instant::now();
        for _ in 0..n {
            let mut c = rustls::ClientConnection::new(cc.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
            let mut s = rustls::ServerConnection::new(sc.clone()).unwrap();
            pump(&mut c, &mut s, &mut server_ns);
            assert!(!s.is_handshaking());
        }
        let el = t.elapsed();
        // bulk: server encrypts 200-byte frames
        let mut c = rustls::ClientConnection::new(cc.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
        let mut s = rustls::ServerConnection::new(sc.clone()).unwrap();
        let mut dummy = 0;
        pump(&mut c, &mut s, &mut dummy);
        let suite = (s.negotiated_cipher_suite().unwrap().suite(), s.negotiated_key_exchange_group().unwrap().name());
        let frame = vec![7u8; 200];
        let mut out = Vec::with_capacity(1 << 20);
        let frames = 2_000_000;
        let t2 = Instant::now();
        use std::io::Write;
        for _ in 0..frames {
            s.writer().write_all(&frame).unwrap();
            s.write_tls(&mut out).unwrap();
            out.clear();
        }
        let e2 = t2.elapsed();
        let big = vec![7u8; 16000];
        let t3 = Instant::now();
        for _ in 0..20000 { s.writer().write_all(&big).unwrap(); s.write_tls(&mut out).unwrap(); out.clear(); }
        let e3 = t3.elapsed();
        println!("{name}: {suite:?}: {:.0} full handshakes/s (client+server, one thread), server side {:.1} us/handshake; 200-B records {:.0} ns each; 16 kB records {:.2} GB/s",
            n as f64 / el.as_secs_f64(), server_ns as f64 / n as f64 / 1000.0, e2.as_nanos() as f64 / frames as f64, 20000.0*16000.0 / e3.as_secs_f64() / 1e9);
    }
}
