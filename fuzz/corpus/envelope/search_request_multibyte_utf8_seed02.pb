
˜
»
$01907e3c-8c1a-7b2e-9f3d-2a4b6c8d0e20COLMEX-FGR û¸ž†€2(Û¢†€22ðáÒÃ´¥–‡xiZK<-:investigationB*
agr-mex-col-2024ConvenciÃ³n de PalermoJCaso NÂº 12/2024 â€” BogotÃ¡Rfiscal-Ã±-07(
correo-1josÃ©.nÃºÃ±ez@example.mx.
doc-ðŸ˜€"CC-1.020.304national_id"COLenlace.v1.SearchRequestl
(ed25519:6a3803d5f059902a1c6dafbc9ba47292@GòO]¼RÆ<b€”7ÛM)—…—hØœ‹rÁ9ÂËºÕ˜Ð!Xƒñ”’),¼s±OŒÒSq‘,2ýS£