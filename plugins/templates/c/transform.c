// {{name}}: a postwire plugin in C. Adds "tagged_by": "<config tag or {{name}}>" to the event and
// drops mail whose event text contains "[bulk]" (a plain substring test: the event is JSON
// text, and this example parses none of it).
//
// Build: see README.md.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

// The value of `"tag": "..."` in the config text, or "{{name}}" (no escapes handled: an example).
static char *config_tag(void) {
    plugin_string_t cfg;
    postwire_plugin_host_config(&cfg);
    const char *key = "\"tag\"";
    char *text = strndup((const char *)cfg.ptr, cfg.len);
    plugin_string_free(&cfg);
    char *tag = NULL;
    char *at = text ? strstr(text, key) : NULL;
    if (at) {
        char *open = strchr(at + strlen(key), '"');
        char *close = open ? strchr(open + 1, '"') : NULL;
        if (close) tag = strndup(open + 1, (size_t)(close - open - 1));
    }
    free(text);
    return tag ? tag : strdup("{{name}}");
}

static void log_info(const char *message) {
    plugin_string_t m;
    plugin_string_set(&m, message);
    postwire_plugin_host_log(POSTWIRE_PLUGIN_HOST_LEVEL_INFO, &m);
}

bool exports_plugin_transform(plugin_string_t *event, plugin_outcome_t *ret,
                              plugin_plugin_error_t *err) {
    const char *text = (const char *)event->ptr;
    size_t len = event->len;
    if (len < 2 || text[0] != '{') {
        fprintf(stderr, "{{name}}: the event is not a JSON object (%zu bytes)\n", len);
        err->tag = POSTWIRE_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_EVENT;
        plugin_string_dup(&err->val.invalid_event, "not a JSON object");
        plugin_string_free(event);
        return false;
    }
    char *copy = strndup(text, len);
    if (strstr(copy, "[bulk]")) {
        free(copy);
        plugin_string_free(event);
        ret->tag = POSTWIRE_PLUGIN_TYPES_OUTCOME_DROP;
        plugin_string_dup(&ret->val.drop, "bulk mail");
        return true;
    }
    free(copy);
    char *tag = config_tag();
    log_info("{{name}} saw a mail");
    // {"stamped_by":"<tag>", + the rest of the object after its '{'
    const char *rest = text + 1;
    size_t rest_len = len - 1;
    int empty = rest_len > 0 && rest[0] == '}';
    size_t head_len = strlen(tag) + 32;
    char *out = malloc(head_len + rest_len + 1);
    int n = snprintf(out, head_len, "{\"tagged_by\":\"%s\"%s", tag, empty ? "" : ",");
    memcpy(out + n, rest, rest_len);
    free(tag);
    ret->tag = POSTWIRE_PLUGIN_TYPES_OUTCOME_DELIVER;
    ret->val.deliver.ptr = (uint8_t *)out;
    ret->val.deliver.len = (size_t)n + rest_len;
    plugin_string_free(event);
    return true;
}
