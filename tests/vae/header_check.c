/* Uses libvramshim_vae through its public header only (compiled with -Iinclude and nothing of
 * the project, as C99 and as C++): opens the decoder in argv[1], decodes zero latents of
 * argv[2] channels at 8x8 latent pixels, prints the plan line and exits 0; on an error prints
 * the library's message and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vramshim_vae.h>

int main(int argc, char **argv)
{
    char msg[512];
    vramshim_vae *vae = NULL;
    if (argc != 3) {
        fprintf(stderr, "usage: %s VAE.safetensors LATENT_CHANNELS\n", argv[0]);
        return 2;
    }
    int c = atoi(argv[2]);
    if (c < 1 || c > 64) {
        fprintf(stderr, "%s: latent channels %s outside 1..64\n", argv[0], argv[2]);
        return 2;
    }
    if (vramshim_vae_open_file(argv[1], VRAMSHIM_VAE_ARCH_AUTO, &vae, msg, sizeof msg)) {
        fprintf(stderr, "%s\n", msg);
        return 1;
    }
    float *lat = (float *)calloc((size_t)c * 64, sizeof *lat);
    float *out = (float *)malloc((size_t)3 * 64 * 64 * sizeof *out);
    vramshim_vae_decode_args a;
    vramshim_vae_plan plan;
    int rc = 1;
    memset(&a, 0, sizeof a);
    a.latents = lat;
    a.out = out;
    a.ndim = 4;
    a.shape[0] = 1;
    a.shape[1] = c;
    a.shape[2] = a.shape[3] = 8;
    a.tile_px = 32;
    if (!lat || !out)
        fprintf(stderr, "out of memory\n");
    else if (vramshim_vae_decode(vae, &a, &plan, msg, sizeof msg))
        fprintf(stderr, "%s\n", msg);
    else {
        printf("plan %s; predicted %zu bytes, measured %zu bytes\n", plan.description,
               plan.predicted_peak, plan.measured_peak);
        rc = 0;
    }
    free(lat);
    free(out);
    vramshim_vae_close(vae);
    return rc;
}
