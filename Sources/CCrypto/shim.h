#ifndef WASLA_CCRYPTO_H
#define WASLA_CCRYPTO_H
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>

// A keyed HMAC-SHA256 context that is reused per message with EVP_MAC_init(ctx, NULL, 0, NULL): OpenSSL 3's
// one-shot HMAC() fetches the algorithm and keys a MAC on every call, about 2x slower at 1.5 KiB.
static inline EVP_MAC_CTX *wasla_hmac_sha256_new(const unsigned char *key, size_t len) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;  // the ctx holds its own reference
    EVP_MAC_free(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end() };
    if (ctx && !EVP_MAC_init(ctx, key, len, params)) { EVP_MAC_CTX_free(ctx); ctx = NULL; }
    return ctx;
}

/// Computes HMAC-SHA256 of data into out (32 bytes) with a keyed context; returns 1 on success.
static inline int wasla_hmac_sha256_run(EVP_MAC_CTX *ctx, const unsigned char *data, size_t len,
                                        unsigned char *out) {
    size_t outlen = 0;
    if (!EVP_MAC_init(ctx, NULL, 0, NULL)) return 0;
    if (!EVP_MAC_update(ctx, data, len)) return 0;
    if (!EVP_MAC_final(ctx, out, &outlen, 32)) return 0;
    return outlen == 32;
}

/// The SHA-256 implementation, fetched once: with EVP_sha256() every digest fetches it again from the provider
/// store (a lock and a lookup): 291 ns for a 50-byte wamid against 116 ns prefetched (a C loop of a million).
static inline EVP_MD *wasla_sha256_md(void) {
    static EVP_MD *cached = NULL;  // read and set only through __atomic builtins
    EVP_MD *md = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
    if (md) return md;
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD *expected = NULL;
    if (md && !__atomic_compare_exchange_n(&cached, &expected, md, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        EVP_MD_free(md);  // another thread stored one first
        md = expected;
    }
    return md;
}

/// SHA-256 of data into out (32 bytes); returns 1 on success.
static inline int wasla_sha256(const unsigned char *data, size_t len, unsigned char *out) {
    unsigned int outlen = 0;
    const EVP_MD *md = wasla_sha256_md();
    return md && EVP_Digest(data, len, out, &outlen, md, NULL) && outlen == 32;
}

// AES-256-GCM in one call each way (EVP's control codes are macros Swift does not import reliably).
// seal: writes len bytes of ciphertext to out and 16 bytes of tag; returns 1 on success.
static inline int wasla_aes256gcm_seal(const unsigned char *key, const unsigned char *nonce12,
                                       const unsigned char *in, int len, unsigned char *out, unsigned char *tag16) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL, n = 0;
    ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce12);
    ok = ok && EVP_EncryptUpdate(ctx, out, &n, in, len);
    ok = ok && EVP_EncryptFinal_ex(ctx, out + n, &n);
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag16);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}
// open: returns 1 only if the tag verifies (the ciphertext and key are authentic).
static inline int wasla_aes256gcm_open(const unsigned char *key, const unsigned char *nonce12,
                                       const unsigned char *in, int len, const unsigned char *tag16,
                                       unsigned char *out) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL, n = 0;
    ok = ok && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce12);
    ok = ok && EVP_DecryptUpdate(ctx, out, &n, in, len);
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)tag16);
    ok = ok && EVP_DecryptFinal_ex(ctx, out + n, &n) > 0;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}
// Incremental SHA-256 for streamed downloads.
static inline EVP_MD_CTX *wasla_sha256_begin(void) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) { EVP_MD_CTX_free(ctx); ctx = NULL; }
    return ctx;
}
static inline int wasla_sha256_update(EVP_MD_CTX *ctx, const void *data, size_t len) { return EVP_DigestUpdate(ctx, data, len); }
/// Writes 32 bytes and frees the context.
static inline int wasla_sha256_finish(EVP_MD_CTX *ctx, unsigned char *out) {
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(ctx, out, &n) && n == 32;
    EVP_MD_CTX_free(ctx);
    return ok;
}
// PBKDF2-HMAC-SHA256 (password hashing, hardening.md §8); returns 1 on success.
static inline int wasla_pbkdf2_sha256(const char *pw, size_t pwlen, const unsigned char *salt, size_t saltlen,
                                      int iterations, unsigned char *out, size_t outlen) {
    return PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)saltlen, iterations, EVP_sha256(), (int)outlen, out);
}
// scrypt (hardening.md §8); maxmem must be given: OpenSSL 3's 32 MiB default is below N=2^17, r=8 (128 MiB).
static inline int wasla_scrypt(const char *pw, size_t pwlen, const unsigned char *salt, size_t saltlen,
                               uint64_t n, uint64_t r, uint64_t p, unsigned char *out, size_t outlen) {
    return EVP_PBE_scrypt(pw, pwlen, salt, saltlen, n, r, p, 256ull * 1024 * 1024, out, outlen);
}
#endif
