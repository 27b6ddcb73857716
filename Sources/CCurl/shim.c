// libcurl through dlopen on first use; see include/CCurl.h.
#include "CCurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];
static int loaded;

static CURLcode (*p_global_init)(long);
static CURL *(*p_easy_init)(void);
static CURLcode (*p_easy_setopt)(CURL *, CURLoption, ...);
static CURLcode (*p_easy_getinfo)(CURL *, CURLINFO, ...);
static CURLcode (*p_easy_perform)(CURL *);
static void (*p_easy_cleanup)(CURL *);
static const char *(*p_easy_strerror)(CURLcode);
static struct curl_slist *(*p_slist_append)(struct curl_slist *, const char *);
static void (*p_slist_free_all)(struct curl_slist *);
static curl_mime *(*p_mime_init)(CURL *);
static curl_mimepart *(*p_mime_addpart)(curl_mime *);
static CURLcode (*p_mime_name)(curl_mimepart *, const char *);
static CURLcode (*p_mime_filename)(curl_mimepart *, const char *);
static CURLcode (*p_mime_type)(curl_mimepart *, const char *);
static CURLcode (*p_mime_data)(curl_mimepart *, const char *, size_t);
static void (*p_mime_free)(curl_mime *);

#define RESOLVE(ptr, name) \
    do { \
        *(void **)(&ptr) = dlsym(lib, name); \
        if (!ptr) { snprintf(load_error, sizeof load_error, "libcurl.so.4 has no %s", name); return; } \
    } while (0)

static void load(void) {
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load libcurl.so.4 (apt-get install -y libcurl4): %s",
                 e ? e : "unknown error");
        return;
    }
    RESOLVE(p_global_init, "curl_global_init");
    RESOLVE(p_easy_init, "curl_easy_init");
    RESOLVE(p_easy_setopt, "curl_easy_setopt");
    RESOLVE(p_easy_getinfo, "curl_easy_getinfo");
    RESOLVE(p_easy_perform, "curl_easy_perform");
    RESOLVE(p_easy_cleanup, "curl_easy_cleanup");
    RESOLVE(p_easy_strerror, "curl_easy_strerror");
    RESOLVE(p_slist_append, "curl_slist_append");
    RESOLVE(p_slist_free_all, "curl_slist_free_all");
    RESOLVE(p_mime_init, "curl_mime_init");
    RESOLVE(p_mime_addpart, "curl_mime_addpart");
    RESOLVE(p_mime_name, "curl_mime_name");
    RESOLVE(p_mime_filename, "curl_mime_filename");
    RESOLVE(p_mime_type, "curl_mime_type");
    RESOLVE(p_mime_data, "curl_mime_data");
    RESOLVE(p_mime_free, "curl_mime_free");
    // Once, before any handle, inside pthread_once: curl_global_init is not thread-safe in every libcurl.
    CURLcode rc = p_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed: %d", (int)rc);
        return;
    }
    loaded = 1;
}

static int ready(void) {
    pthread_once(&once, load);
    return loaded;
}

const char *wasla_curl_load_error(void) { return load_error[0] ? load_error : NULL; }

CURL *curl_easy_init(void) { return ready() ? p_easy_init() : NULL; }
// Every function below takes a handle or list that only exists once curl_easy_init succeeded.
CURLcode curl_easy_perform(CURL *h) { return p_easy_perform(h); }
void curl_easy_cleanup(CURL *h) { if (h) p_easy_cleanup(h); }
const char *curl_easy_strerror(CURLcode rc) { return ready() ? p_easy_strerror(rc) : "libcurl is not loaded"; }
struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s) {
    return ready() ? p_slist_append(l, s) : NULL;
}
void curl_slist_free_all(struct curl_slist *l) { if (l) p_slist_free_all(l); }
curl_mime *curl_mime_init(CURL *h) { return p_mime_init(h); }
curl_mimepart *curl_mime_addpart(curl_mime *m) { return p_mime_addpart(m); }
CURLcode curl_mime_name(curl_mimepart *p, const char *s) { return p_mime_name(p, s); }
CURLcode curl_mime_filename(curl_mimepart *p, const char *s) { return p_mime_filename(p, s); }
CURLcode curl_mime_type(curl_mimepart *p, const char *s) { return p_mime_type(p, s); }
CURLcode curl_mime_data(curl_mimepart *p, const char *d, size_t n) { return p_mime_data(p, d, n); }
void curl_mime_free(curl_mime *m) { if (m) p_mime_free(m); }

CURLcode wasla_curl_set_long(CURL *h, CURLoption o, long v) { return p_easy_setopt(h, o, v); }
CURLcode wasla_curl_set_ptr(CURL *h, CURLoption o, void *v) { return p_easy_setopt(h, o, v); }
CURLcode wasla_curl_set_str(CURL *h, CURLoption o, const char *v) { return p_easy_setopt(h, o, v); }
CURLcode wasla_curl_set_slist(CURL *h, CURLoption o, struct curl_slist *v) { return p_easy_setopt(h, o, v); }
CURLcode wasla_curl_set_postfields(CURL *h, const char *data, long size) {
    CURLcode rc = p_easy_setopt(h, CURLOPT_POSTFIELDSIZE, size);
    return rc != CURLE_OK ? rc : p_easy_setopt(h, CURLOPT_POSTFIELDS, data);
}
CURLcode wasla_curl_set_write(CURL *h, wasla_curl_write_fn fn, void *ctx) {
    CURLcode rc = p_easy_setopt(h, CURLOPT_WRITEFUNCTION, fn);
    return rc != CURLE_OK ? rc : p_easy_setopt(h, CURLOPT_WRITEDATA, ctx);
}
CURLcode wasla_curl_set_header(CURL *h, wasla_curl_write_fn fn, void *ctx) {
    CURLcode rc = p_easy_setopt(h, CURLOPT_HEADERFUNCTION, fn);
    return rc != CURLE_OK ? rc : p_easy_setopt(h, CURLOPT_HEADERDATA, ctx);
}
CURLcode wasla_curl_get_long(CURL *h, CURLINFO i, long *v) { return p_easy_getinfo(h, i, v); }
