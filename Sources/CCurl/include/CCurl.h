#ifndef WASLA_CCURL_H
#define WASLA_CCURL_H
// libcurl, loaded on first use with dlopen("libcurl.so.4") instead of linked: its closure of ~29 shared libraries
// (GnuTLS, Kerberos, LDAP, SSH, ...) made 7.5 MiB of an idle server's RSS (/proc/PID/smaps), and an install that
// has sent nothing yet needs none of it. shim.c defines the curl functions Wasla calls, forwarding to the loaded
// library; if it cannot be loaded, curl_easy_init returns NULL and wasla_curl_load_error() says why.
#include <curl/curl.h>

/// NULL when libcurl is loaded (or not tried yet), else dlopen's or dlsym's message.
const char *wasla_curl_load_error(void);

// curl_easy_setopt / getinfo are variadic, which Swift cannot call: one typed wrapper per argument type.
CURLcode wasla_curl_set_long(CURL *h, CURLoption o, long v);
CURLcode wasla_curl_set_ptr(CURL *h, CURLoption o, void *v);
CURLcode wasla_curl_set_str(CURL *h, CURLoption o, const char *v);
CURLcode wasla_curl_set_slist(CURL *h, CURLoption o, struct curl_slist *v);
CURLcode wasla_curl_set_postfields(CURL *h, const char *data, long size);
typedef size_t (*wasla_curl_write_fn)(char *, size_t, size_t, void *);
CURLcode wasla_curl_set_write(CURL *h, wasla_curl_write_fn fn, void *ctx);
CURLcode wasla_curl_set_header(CURL *h, wasla_curl_write_fn fn, void *ctx);
CURLcode wasla_curl_get_long(CURL *h, CURLINFO i, long *v);
#endif
