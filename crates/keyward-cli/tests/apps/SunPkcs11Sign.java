// Sign with a PKCS#11 token's keys through Java's SunPKCS11 provider.
//
// Usage: java SunPkcs11Sign CONFIG PIN_FILE DATA OUT_DIR
//
// Configures SunPKCS11 from CONFIG, opens the token's key store with the user PIN read from
// PIN_FILE, prints every alias as a JSON line (key entries are the private keys that have a
// certificate under the same CKA_ID), then signs DATA with every key entry (SHA256withECDSA or
// SHA256withRSA, in the token), verifies each signature with the certificate's public key in
// software, checks that a signature over other data does not verify, and writes the signature
// (ECDSA as DER) to OUT_DIR/ALIAS.sig.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.Collections;
import java.util.List;

public class SunPkcs11Sign {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: SunPkcs11Sign CONFIG PIN_FILE DATA OUT_DIR");
            System.exit(2);
        }
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(p);
        char[] pin = Files.readString(Path.of(args[1]), StandardCharsets.UTF_8)
                .stripTrailing().toCharArray();
        byte[] data = Files.readAllBytes(Path.of(args[2]));
        Path out = Path.of(args[3]);

        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, pin);
        List<String> aliases = Collections.list(ks.aliases());
        Collections.sort(aliases);
        for (String alias : aliases) {
            X509Certificate cert = (X509Certificate) ks.getCertificate(alias);
            System.out.println("{\"alias\": " + q(alias)
                    + ", \"key_entry\": " + ks.isKeyEntry(alias)
                    + ", \"subject\": " + q(cert == null ? "" : cert.getSubjectX500Principal().getName())
                    + "}");
        }
        for (String alias : aliases) {
            if (!ks.isKeyEntry(alias)) {
                continue;
            }
            PrivateKey key = (PrivateKey) ks.getKey(alias, null);
            X509Certificate cert = (X509Certificate) ks.getCertificate(alias);
            String alg;
            switch (key.getAlgorithm()) {
                case "EC": alg = "SHA256withECDSA"; break;
                case "RSA": alg = "SHA256withRSA"; break;
                default: throw new IllegalStateException(alias + ": no signature for " + key.getAlgorithm());
            }
            Signature s = Signature.getInstance(alg, p);
            s.initSign(key);
            // Two updates: C_SignUpdate twice, then C_SignFinal.
            int half = data.length / 2;
            s.update(data, 0, half);
            s.update(data, half, data.length - half);
            byte[] sig = s.sign();

            // Verified in software by the default providers, not the token.
            Signature v = Signature.getInstance(alg);
            v.initVerify(cert.getPublicKey());
            v.update(data);
            if (!v.verify(sig)) {
                throw new IllegalStateException(alias + ": the signature does not verify");
            }
            v.initVerify(cert.getPublicKey());
            v.update(data);
            v.update((byte) '!');
            if (v.verify(sig)) {
                throw new IllegalStateException(alias + ": the signature verifies other data");
            }
            Path file = out.resolve(alias + ".sig");
            Files.write(file, sig);
            System.out.println("{\"signed\": " + q(alias) + ", \"algorithm\": " + q(alg)
                    + ", \"provider\": " + q(s.getProvider().getName())
                    + ", \"signature\": " + q(file.toString()) + ", \"verified\": true}");
        }
    }

    private static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
