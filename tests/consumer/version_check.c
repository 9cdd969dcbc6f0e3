/* The headers' version (netframe/config.h) and the library's (nf_version)
 * must agree in a build made from one tree; prints the features of a loop. */
#include <netframe/netframe.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    if (strcmp(nf_version(), NF_VERSION_STRING) != 0 || nf_version_hex() != NF_VERSION_HEX) {
        fprintf(stderr, "version mismatch: headers %s, library %s\n", NF_VERSION_STRING, nf_version());
        return 1;
    }
    nf_loop_t *loop;
    int err = nf_loop_new(&loop, NULL);
    if (err != 0) {
        fprintf(stderr, "nf_loop_new: %s\n", nf_strerror(err));
        return 1;
    }
    printf("netframe %s: %s\n", nf_version(), nf_loop_features(loop));
    return nf_loop_free(loop) == 0 ? 0 : 1;
}
