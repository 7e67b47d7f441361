#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "dispatch.pb-c.h"

static void *pack_request(Dispatch__Request *request, size_t *len)
{
    void *buf;
    assert_int_equal(codec_encode(&request->base, &buf, len), 0);
    return buf;
}

static void make_submit(Dispatch__Request *request, Dispatch__SubmitTicket *submit)
{
    dispatch__request__init(request);
    dispatch__submit_ticket__init(submit);
    submit->client_request_id = "req-1";
    submit->channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    submit->kind = DISPATCH__KIND__KIND_COMPLAINT;
    submit->urgency = DISPATCH__URGENCY__URGENCY_URGENT;
    submit->description = "井盖破损 — broken manhole cover";
    submit->caller_phone = "13812341234";
    request->body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request->submit = submit;
}

static void test_round_trip(void **state)
{
    Dispatch__Request request;
    Dispatch__SubmitTicket submit;
    make_submit(&request, &submit);
    size_t len;
    void *buf = pack_request(&request, &len);
    ProtobufCMessage *out;
    char err[256] = "";
    assert_int_equal(
        codec_decode(&dispatch__request__descriptor, buf, len, 4096, &out, err, sizeof(err)), 0);
    Dispatch__Request *decoded = (Dispatch__Request *)out;
    assert_int_equal(decoded->body_case, DISPATCH__REQUEST__BODY_SUBMIT);
    assert_string_equal(decoded->submit->description, submit.description);
    assert_int_equal(decoded->submit->urgency, DISPATCH__URGENCY__URGENCY_URGENT);
    protobuf_c_message_free_unpacked(out, NULL);
    free(buf);
}

static void test_too_large(void **state)
{
    Dispatch__Request request;
    Dispatch__SubmitTicket submit;
    make_submit(&request, &submit);
    size_t len;
    void *buf = pack_request(&request, &len);
    ProtobufCMessage *out = (ProtobufCMessage *)1;
    char err[256] = "";
    assert_int_equal(
        codec_decode(&dispatch__request__descriptor, buf, len, len - 1, &out, err, sizeof(err)),
        CODEC_TOO_LARGE);
    assert_null(out);
    assert_non_null(strstr(err, "limit"));
    free(buf);
}

static void test_malformed(void **state)
{
    /* A length-delimited field whose length runs past the end. */
    const unsigned char bad[] = {0x52, 0x7f, 0x0a, 0x01, 'x'};
    ProtobufCMessage *out;
    char err[256] = "";
    assert_int_equal(codec_decode(&dispatch__request__descriptor, bad, sizeof(bad), 4096, &out, err,
                                  sizeof(err)),
                     CODEC_MALFORMED);
    assert_null(out);
    assert_non_null(strstr(err, "malformed"));
    /* Random bytes never crash the decoder. */
    srand(7);
    unsigned char noise[256];
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(rand() % (int)sizeof(noise));
        for (size_t i = 0; i < len; i++)
            noise[i] = (unsigned char)rand();
        if (codec_decode(&dispatch__request__descriptor, noise, len, 4096, &out, err,
                         sizeof(err)) == 0)
            protobuf_c_message_free_unpacked(out, NULL);
    }
}

static void test_invalid_utf8_names_the_field(void **state)
{
    Dispatch__Request request;
    Dispatch__SubmitTicket submit;
    make_submit(&request, &submit);
    submit.caller_name = "\xc3\x28"; /* broken two-byte sequence */
    size_t len;
    void *buf = pack_request(&request, &len);
    ProtobufCMessage *out;
    char err[256] = "";
    assert_int_equal(
        codec_decode(&dispatch__request__descriptor, buf, len, 4096, &out, err, sizeof(err)),
        CODEC_BAD_UTF8);
    assert_string_equal(err, "submit.caller_name: invalid UTF-8");
    free(buf);
}

static void test_undeclared_enum_names_the_field(void **state)
{
    Dispatch__Request request;
    Dispatch__SubmitTicket submit;
    make_submit(&request, &submit);
    submit.kind = (Dispatch__Kind)99;
    size_t len;
    void *buf = pack_request(&request, &len);
    ProtobufCMessage *out;
    char err[256] = "";
    assert_int_equal(
        codec_decode(&dispatch__request__descriptor, buf, len, 4096, &out, err, sizeof(err)),
        CODEC_BAD_ENUM);
    assert_non_null(strstr(err, "submit.kind: value 99"));
    free(buf);
}

static void test_utf8_validator(void **state)
{
    assert_true(codec_utf8_valid("", 0));
    assert_true(codec_utf8_valid("plain", 5));
    assert_true(codec_utf8_valid("\xe5\x8c\x97\xe4\xba\xac", 6)); /* 北京 */
    assert_true(codec_utf8_valid("\xf0\x9f\x98\x80", 4));         /* emoji */
    assert_false(codec_utf8_valid("\xc0\xaf", 2));                /* overlong */
    assert_false(codec_utf8_valid("\xed\xa0\x80", 3));            /* surrogate */
    assert_false(codec_utf8_valid("\xf4\x90\x80\x80", 4));        /* > U+10FFFF */
    assert_false(codec_utf8_valid("\xe5\x8c", 2));                /* truncated */
    assert_false(codec_utf8_valid("\xff", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_invalid_utf8_names_the_field),
        cmocka_unit_test(test_undeclared_enum_names_the_field),
        cmocka_unit_test(test_utf8_validator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
