/*
 * config_file.h — colo-proxy's configuration file: INI style, read with GKeyFile.
 *
 * One group per command ([compare], [rewrite], [run], [replay]); each key is a
 * long option of that command, spelt as on the command line (QEMU's names where
 * colo-compare has them), and its value what the option takes:
 *
 *   [compare]
 *   primary_in = tcp:127.0.0.1:9001
 *   compare_timeout = 3000
 *   vnet_hdr_support = true
 *
 * A flag is true or false. The file only turns keys into option words; the
 * command applies them exactly as it applies its command line, which comes
 * after (and so wins). docs/config.md is the reference.
 */
#ifndef COLO_CONFIG_FILE_H
#define COLO_CONFIG_FILE_H

#include <getopt.h>
#include <stddef.h>

/*
 * The [group] of the file as option words ("--key=value", or "--key" for a true
 * flag), NULL-terminated, in file order; free with g_strfreev. Keys in `extra`
 * (NULL-terminated, may be NULL) are allowed and skipped: the caller reads them
 * with config_file_string. NULL with a one-line reason naming the file, the
 * group or key, and the fix.
 */
char **config_file_words(const char *path, const char *group, const struct option *longopts,
                         const char *const *extra, char *err, size_t errlen);

/* The same from the file's text in memory; `name` stands for the file in messages. */
char **config_file_words_from_data(const char *data, size_t len, const char *name, const char *group,
                                   const struct option *longopts, const char *const *extra, char *err,
                                   size_t errlen);

/*
 * The long option nearest to a misspelt `key` (at most 3 edits away, none of
 * `skip`), or NULL: the "did you mean" of unknown config keys and options alike.
 */
const char *config_file_nearest_option(const char *key, const struct option *longopts, const char *const *skip);

/* A key's value (g_free it), or NULL when it is not there. */
char *config_file_string(const char *path, const char *group, const char *key);

#endif
