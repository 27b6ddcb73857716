#ifndef WASLA_CCURL_H
#define WASLA_CCURL_H
#include <curl/curl.h>
// curl_easy_setopt / getinfo are variadic, which Swift cannot call: one typed wrapper per argument type.
static inline CURLcode wasla_curl_set_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode wasla_curl_set_ptr(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode wasla_curl_set_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode wasla_curl_get_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
#endif
