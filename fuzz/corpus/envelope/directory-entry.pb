
Х
MEXmex.enlace.example:7443 лллллллллллллллллллллллллллллллл"L
(ed25519:34750f98bd59fcfc946da45aaabe933b КИу▌t	ёХ¤R█-<║]r╩g	┐ФєtИ┤o\0А╨ъ╢╖3enlace.v1.DirectoryEntryl
(ed25519:34750f98bd59fcfc946da45aaabe933b@Ъўy	Q¤ё▐ЖЄРmРЬБ√ь╦)зdCш╔П<Ї4r/cёE┘█■·ОН_жЦcо/УW╡щ	∙▓╘■n%