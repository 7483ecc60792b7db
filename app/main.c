/* SPDX-License-Identifier: MIT */
#include <stdio.h>
int main(void) { puts("fluxo"); return 0; }
