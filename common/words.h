/* words: the word of each value of a protobuf enum, read from the enum's
 * descriptor: one rule for the command line, the data files, the
 * configuration files and messages, instead of a word table per program.
 *
 * The word of a value is its name without the enum's prefix, in lower case,
 * with '-' for '_': SATISFACTION_BASICALLY_SATISFIED -> "basically-satisfied",
 * CHANNEL_MESSAGE_BOARD -> "message-board", CHANNEL_OPEN311 -> "open311".
 * The prefix is the enum's name in UPPER_SNAKE_CASE and a '_'
 * (EmergencyLine -> "EMERGENCY_LINE_"), which every value of the contract
 * carries; a value without it keeps its whole name. A value named
 * <PREFIX>UNSPECIFIED has no word: it means "not given". A 0 with a meaning
 * has one (SUPERVISION_LEVEL_NONE -> "none").
 *
 * Aliases: a few values also answer to the short form the command line and
 * the data files used before the rule: "basically", "partly", and the
 * numbers of the emergency lines "110", "119", "120", "122". words_parse()
 * accepts them; nothing prints them except a list of what is accepted.
 *
 * Nothing here allocates or keeps state. Returned strings point into the
 * descriptors or the alias table (static, never freed); words_name() writes
 * into the caller's buffer.
 */
#ifndef DISPATCH_WORDS_H
#define DISPATCH_WORDS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Room for any word of the contract and its NUL. */
#define WORDS_SIZE 64

/* The value's name without the enum's prefix ("BASICALLY_SATISFIED",
 * "UNSPECIFIED", "OK"): the upper-case form messages and tables print.
 * NULL when value is not one of the enum. */
const char *words_suffix(const ProtobufCEnumDescriptor *descriptor, int value);

/* The value's word into buf ("basically-satisfied"). 0, or -EINVAL when the
 * value is not one of the enum or has no word (UNSPECIFIED), -ENOSPC when
 * buf cannot hold it; buf is "" on error when len > 0. */
int words_name(const ProtobufCEnumDescriptor *descriptor, int value, char *buf, size_t len);

/* The alias of a value ("basically"), NULL when it has none. */
const char *words_alias(const ProtobufCEnumDescriptor *descriptor, int value);

/* The value whose word or alias is `word`, ASCII case ignored: 0 and
 * *value, or -EINVAL (nothing written) when no value answers to it. */
int words_parse(const ProtobufCEnumDescriptor *descriptor, const char *word, int *value);

#endif
