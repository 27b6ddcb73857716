#ifndef WASLA_CCURL_H
#define WASLA_CCURL_H
#include <curl/curl.h>
// curl_easy_setopt / getinfo are variadic, which Swift cannot call: one typed wrapper per argument type.
static inline CURLcode wasla_curl_set_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode wasla_curl_set_ptr(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode wasla_curl_set_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode wasla_curl_set_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode wasla_curl_set_postfields(CURL *h, const char *data, long size) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, size);
    return rc != CURLE_OK ? rc : curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
}
typedef size_t (*wasla_curl_write_fn)(char *, size_t, size_t, void *);
static inline CURLcode wasla_curl_set_write(CURL *h, wasla_curl_write_fn fn, void *ctx) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fn);
    return rc != CURLE_OK ? rc : curl_easy_setopt(h, CURLOPT_WRITEDATA, ctx);
}
static inline CURLcode wasla_curl_set_header(CURL *h, wasla_curl_write_fn fn, void *ctx) {
    CURLcode rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fn);
    return rc != CURLE_OK ? rc : curl_easy_setopt(h, CURLOPT_HEADERDATA, ctx);
}
static inline CURLcode wasla_curl_get_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
#endif
