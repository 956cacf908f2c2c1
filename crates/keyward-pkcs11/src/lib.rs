//! libkeyward_pkcs11.so: the PKCS#11 3.0 C ABI over the Keyward engine.
