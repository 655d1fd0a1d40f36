/* Built against an installed liboc2mqtt through pkg-config alone (make
 * test-install), shared and static: proves the header, the libraries and
 * oc2mqtt.pc are usable as installed. */
#include <stdio.h>
#include <string.h>

#include <oc2mqtt.h>

int main(void) {
    const char *text = "{\"action\":\"query\",\"target\":{\"features\":[\"versions\"]}}";
    oc2_codec *codec = NULL;
    oc2_message *m = NULL;
    oc2_str action;
    if (oc2_codec_new(&codec) != OC2_RESULT_OK ||
        oc2_codec_decode(codec, (const uint8_t *)text, strlen(text), NULL, &m) != OC2_RESULT_OK ||
        oc2_message_action(m, &action) != OC2_RESULT_OK || strcmp(action.data, "query") != 0) {
        fprintf(stderr, "linked: decode through the installed library failed\n");
        return 1;
    }
    printf("linked: liboc2mqtt %s decodes (%s)\n", oc2_version().data, action.data);
    oc2_message_free(m);
    oc2_codec_free(codec);
    return 0;
}
